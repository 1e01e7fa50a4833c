// Test programs report malloc's own figure (mallinfo2 is not in Swift's Glibc module).
#include <malloc.h>
