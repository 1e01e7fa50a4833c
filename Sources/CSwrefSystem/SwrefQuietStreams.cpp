// libswiftRemoteMirror writes what it finds wrong in corrupt metadata to std::cerr (sections
// too small, the bytes around them: many lines a type). swref itself never uses std::cerr, and
// says it in one note instead (ReflectionContext.faultNote): a failed stream writes nothing.
#include <iostream>

extern "C" void swref_silence_cerr(void) { std::cerr.setstate(std::ios_base::badbit); }
