//===- JsonNesting.cpp - Bounding JSON nesting before parsing -------------===//

#include "rotor/Support/JsonNesting.h"

#include <algorithm>

unsigned rotor::jsonNestingDepth(llvm::StringRef text, unsigned limit) {
  unsigned depth = 0, deepest = 0;
  bool inString = false, escaped = false;
  for (char ch : text) {
    if (inString) {
      if (escaped)
        escaped = false;
      else if (ch == '\\')
        escaped = true;
      else if (ch == '"')
        inString = false;
      continue;
    }
    switch (ch) {
    case '"':
      inString = true;
      break;
    case '[':
    case '{':
      deepest = std::max(deepest, ++depth);
      if (deepest > limit)
        return deepest;
      break;
    case ']':
    case '}':
      if (depth)
        --depth;
      break;
    default:
      break;
    }
  }
  return deepest;
}
