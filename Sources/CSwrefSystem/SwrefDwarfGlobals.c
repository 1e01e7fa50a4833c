// Global variables from DWARF: name, address and the mangled name of their type, which
// libswiftRemoteMirror turns into a layout (swiftc puts the type's mangling in DW_AT_linkage_name).
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <dwarf.h>
#include <fcntl.h>
#include <unistd.h>

static const char *type_linkage_name(Dwarf_Die *type) {
  Dwarf_Die current = *type;
  for (int depth = 0; depth < 8; depth++) {
    Dwarf_Attribute attr;
    const char *name = NULL;
    if (dwarf_attr_integrate(&current, DW_AT_linkage_name, &attr)) name = dwarf_formstring(&attr);
    if (name) return name;
    // Qualifiers and typedefs wrap the type that carries the mangled name.
    if (!dwarf_attr_integrate(&current, DW_AT_type, &attr)) return NULL;
    Dwarf_Die inner;
    if (!dwarf_formref_die(&attr, &inner)) return NULL;
    current = inner;
  }
  return NULL;
}

static int visit(Dwarf_Die *die, swref_global_fn found, void *context, int depth) {
  int count = 0;
  Dwarf_Die child;
  if (depth > 6 || dwarf_child(die, &child) != 0) return 0;
  do {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_module || tag == DW_TAG_namespace || tag == DW_TAG_structure_type ||
        tag == DW_TAG_class_type || tag == DW_TAG_enumeration_type) {
      count += visit(&child, found, context, depth + 1);
      continue;
    }
    if (tag != DW_TAG_variable) continue;
    Dwarf_Attribute location;
    if (!dwarf_attr_integrate(&child, DW_AT_location, &location)) continue;
    Dwarf_Op *ops = NULL;
    size_t nops = 0;
    if (dwarf_getlocation(&location, &ops, &nops) != 0 || nops != 1 || ops[0].atom != DW_OP_addr) continue;
    const char *name = dwarf_diename(&child);
    Dwarf_Attribute type_attr;
    Dwarf_Die type;
    const char *mangled = NULL;
    Dwarf_Word size = 0;
    if (dwarf_attr_integrate(&child, DW_AT_type, &type_attr) && dwarf_formref_die(&type_attr, &type)) {
      mangled = type_linkage_name(&type);
      Dwarf_Attribute size_attr;
      if (dwarf_attr_integrate(&type, DW_AT_byte_size, &size_attr)) dwarf_formudata(&size_attr, &size);
    }
    found(context, name ? name : "", ops[0].number, size, mangled);
    count++;
  } while (dwarf_siblingof(&child, &child) == 0);
  return count;
}

int swref_dwarf_globals(const char *path, swref_global_fn found, void *context) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Dwarf *dwarf = dwarf_begin(fd, DWARF_C_READ);
  if (!dwarf) {
    close(fd);
    return -1;
  }
  int count = 0;
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(dwarf, offset, &next, &header_size, NULL, NULL, NULL) == 0) {
    Dwarf_Die cu;
    if (dwarf_offdie(dwarf, offset + header_size, &cu)) count += visit(&cu, found, context, 0);
    offset = next;
  }
  dwarf_end(dwarf);
  close(fd);
  return count;
}
