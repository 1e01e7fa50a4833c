// Named locals of a stack frame from DWARF: what lets a stack root be a variable, not a frame.
#define _GNU_SOURCE
#include "CSwrefSystem.h"

#include <dwarf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

// One cached file: tests and reports ask for many frames of the same binary.
static char cached_path[4096];
static Dwarf *cached_dwarf;
static int cached_fd = -1;

static Dwarf *open_dwarf(const char *path) {
  if (cached_dwarf && strcmp(path, cached_path) == 0) return cached_dwarf;
  if (cached_dwarf) { dwarf_end(cached_dwarf); close(cached_fd); cached_dwarf = NULL; }
  cached_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (cached_fd < 0) return NULL;
  cached_dwarf = dwarf_begin(cached_fd, DWARF_C_READ);
  if (!cached_dwarf) { close(cached_fd); cached_fd = -1; return NULL; }
  strncpy(cached_path, path, sizeof cached_path - 1);
  return cached_dwarf;
}

static const char *type_name_of(Dwarf_Die *die) {
  Dwarf_Attribute attr;
  Dwarf_Die type;
  if (!dwarf_attr_integrate(die, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type)) return NULL;
  for (int depth = 0; depth < 8; depth++) {
    const char *name = NULL;
    if (dwarf_attr_integrate(&type, DW_AT_linkage_name, &attr)) name = dwarf_formstring(&attr);
    if (name) return name;
    Dwarf_Die inner;
    if (!dwarf_attr_integrate(&type, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &inner)) return NULL;
    type = inner;
  }
  return NULL;
}

/// Decodes [base op] [deref]? into (base, offset, deref); 0 when the expression is not a slot.
static int decode_slot(Dwarf_Op *ops, size_t nops, int *base, int64_t *offset, int *deref) {
  if (nops < 1 || nops > 2) return 0;
  *deref = 0;
  if (nops == 2) {
    if (ops[1].atom != DW_OP_deref) return 0;
    *deref = 1;
  }
  if (ops[0].atom == DW_OP_fbreg) { *base = 0; *offset = (int64_t)ops[0].number; return 1; }
  if (ops[0].atom == DW_OP_call_frame_cfa && nops == 1) { *base = 1; *offset = 0; return 1; }
  if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
    *base = 2 + (ops[0].atom - DW_OP_breg0);
    *offset = (int64_t)ops[0].number;
    return 1;
  }
  return 0;
}

static int report_scope(Dwarf_Die *scope, uint64_t pc, swref_local_fn found, void *context, int depth) {
  int count = 0;
  Dwarf_Die child;
  if (depth > 16 || dwarf_child(scope, &child) != 0) return 0;
  do {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_lexical_block) {
      if (dwarf_haspc(&child, pc) == 1) count += report_scope(&child, pc, found, context, depth + 1);
      continue;
    }
    if (tag != DW_TAG_variable && tag != DW_TAG_formal_parameter) continue;
    Dwarf_Attribute location;
    if (!dwarf_attr_integrate(&child, DW_AT_location, &location)) continue;
    Dwarf_Op *ops = NULL;
    size_t nops = 0;
    if (dwarf_getlocation_addr(&location, pc, &ops, &nops, 1) != 1) continue;
    int base = -1, deref = 0;
    int64_t offset = 0;
    if (!decode_slot(ops, nops, &base, &offset, &deref)) continue;
    const char *name = dwarf_diename(&child);
    found(context, name ? name : "", base, offset, deref, type_name_of(&child));
    count++;
  } while (dwarf_siblingof(&child, &child) == 0);
  return count;
}

static int find_function(Dwarf_Die *die, uint64_t pc, Dwarf_Die *result, int depth) {
  Dwarf_Die child;
  if (depth > 8 || dwarf_child(die, &child) != 0) return 0;
  do {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_subprogram && dwarf_haspc(&child, pc) == 1) { *result = child; return 1; }
    if (tag == DW_TAG_module || tag == DW_TAG_namespace || tag == DW_TAG_structure_type || tag == DW_TAG_class_type ||
        tag == DW_TAG_enumeration_type || tag == DW_TAG_subprogram) {
      if (find_function(&child, pc, result, depth + 1)) return 1;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return 0;
}

int swref_dwarf_locals(const char *path, uint64_t pc, swref_local_fn found, void *context, int *frame_base) {
  *frame_base = -1;
  Dwarf *dwarf = open_dwarf(path);
  if (!dwarf) return -1;
  // swiftc emits no .debug_aranges: look through the compile units.
  Dwarf_Off offset = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_nextcu(dwarf, offset, &next, &header_size, NULL, NULL, NULL) == 0) {
    Dwarf_Die cu, function;
    if (dwarf_offdie(dwarf, offset + header_size, &cu) && dwarf_haspc(&cu, pc) == 1 && find_function(&cu, pc, &function, 0)) {
      Dwarf_Attribute base_attr;
      Dwarf_Op *ops = NULL;
      size_t nops = 0;
      if (dwarf_attr_integrate(&function, DW_AT_frame_base, &base_attr) && dwarf_getlocation(&base_attr, &ops, &nops) == 0 && nops == 1) {
        if (ops[0].atom >= DW_OP_reg0 && ops[0].atom <= DW_OP_reg31) *frame_base = 2 + (ops[0].atom - DW_OP_reg0);
        else if (ops[0].atom == DW_OP_call_frame_cfa) *frame_base = 1;
      }
      return report_scope(&function, pc, found, context, 0);
    }
    offset = next;
  }
  return 0;
}
