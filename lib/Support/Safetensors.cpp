//===- Safetensors.cpp - Reading and writing safetensors files ------------===//

#include "rotor/Support/Safetensors.h"

#include "rotor/Support/JsonNesting.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstring>

using namespace llvm;
using namespace rotor::safetensors;

size_t rotor::safetensors::dtypeSize(StringRef dtype) {
  return StringSwitch<size_t>(dtype)
      .Cases({"F64", "I64", "U64"}, 8)
      .Cases({"F32", "I32", "U32"}, 4)
      .Cases({"F16", "BF16", "I16", "U16"}, 2)
      .Cases({"I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"}, 1)
      .Default(0);
}

namespace {
Error fail(StringRef path, const Twine &message) {
  return createStringError(inconvertibleErrorCode(),
                           path + ": " + message);
}
} // namespace

Error rotor::safetensors::requireRegularFile(StringRef path) {
  sys::fs::file_status status;
  if (std::error_code ec = sys::fs::status(path, status))
    return fail(path, "cannot read: " + ec.message());
  // A FIFO would block forever and a device (/dev/zero) never ends.
  if (status.type() != sys::fs::file_type::regular_file)
    return fail(path, "is not a regular file");
  return Error::success();
}

Expected<Archive> Archive::open(StringRef path) {
  if (Error err = requireRegularFile(path))
    return std::move(err);
  auto buffer = MemoryBuffer::getFile(path, /*IsText=*/false,
                                      /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fail(path, "cannot read: " + buffer.getError().message());
  return parse(path, std::move(*buffer));
}

Expected<Archive> Archive::parse(StringRef path,
                                 std::unique_ptr<MemoryBuffer> buffer) {
  StringRef data = buffer->getBuffer();
  if (data.size() < 8)
    return fail(path, "truncated: " + Twine(data.size()) +
                          " bytes, not even the 8-byte header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | uint8_t(data[i]);
  if (headerLen > data.size() - 8)
    return fail(path, "header length " + Twine(headerLen) +
                          " runs past the end of the file (" +
                          Twine(data.size()) + " bytes)");
  // The reference implementation refuses headers over 100 MB too.
  if (headerLen > 100'000'000)
    return fail(path, "header length " + Twine(headerLen) +
                          " is over the 100 MB safetensors allows");
  StringRef header = data.substr(8, headerLen);
  if (jsonNestingDepth(header) > kMaxJsonNesting)
    return fail(path, "header nests JSON deeper than " +
                          Twine(kMaxJsonNesting) + " levels");
  StringRef payload = data.substr(8 + headerLen);
  Expected<json::Value> parsed = json::parse(header);
  if (!parsed)
    return fail(path, "header is not valid JSON: " +
                          toString(parsed.takeError()));
  json::Object *root = parsed->getAsObject();
  if (!root)
    return fail(path, "header is not a JSON object");

  Archive archive;
  archive.filePath = path.str();
  // Validate in name order, so that the tensor an error names does not
  // depend on hash order.
  std::vector<StringRef> names;
  for (auto &entry : *root)
    if (StringRef(entry.first) != "__metadata__")
      names.push_back(entry.first);
  llvm::sort(names);
  // The format requires tensors not to overlap: two names for the same
  // bytes would let a write through one corrupt the other.
  std::vector<std::tuple<uint64_t, uint64_t, StringRef>> ranges;
  for (StringRef name : names) {
    json::Object *entry = root->get(name)->getAsObject();
    if (!entry)
      return fail(path, "tensor '" + name + "': entry is not an object");
    std::optional<StringRef> dtype = entry->getString("dtype");
    json::Array *shape = entry->getArray("shape");
    json::Array *offsets = entry->getArray("data_offsets");
    if (!dtype || !shape || !offsets || offsets->size() != 2)
      return fail(path, "tensor '" + name +
                            "': needs dtype, shape and two data_offsets");
    // A dtype this file does not know is kept (its tensor may never be
    // read); only its offsets are checked, and readers refuse it by dtype.
    size_t elemSize = dtypeSize(*dtype);
    TensorView view;
    view.dtype = dtype->str();
    uint64_t count = 1;
    for (const json::Value &dim : *shape) {
      std::optional<int64_t> size = dim.getAsInteger();
      if (!size || *size < 0)
        return fail(path, "tensor '" + name + "': bad shape entry");
      view.shape.push_back(*size);
      if (*size && count > UINT64_MAX / uint64_t(*size) / std::max<size_t>(elemSize, 1))
        return fail(path, "tensor '" + name + "': its shape has more "
                              "elements than any file can hold");
      count *= uint64_t(*size);
    }
    std::optional<int64_t> begin = (*offsets)[0].getAsInteger();
    std::optional<int64_t> end = (*offsets)[1].getAsInteger();
    if (!begin || !end || *begin < 0 || *end < *begin)
      return fail(path, "tensor '" + name + "': bad data_offsets");
    if (uint64_t(*end) > payload.size())
      return fail(path, "tensor '" + name + "': its data [" + Twine(*begin) +
                            ", " + Twine(*end) + ") runs past the " +
                            Twine(payload.size()) +
                            " bytes of data in the file (truncated?)");
    if (elemSize && uint64_t(*end - *begin) != count * elemSize)
      return fail(path, "tensor '" + name + "': " + Twine(*end - *begin) +
                            " bytes of data for " + Twine(count) + " " +
                            *dtype + " elements");
    view.bytes = payload.substr(*begin, *end - *begin);
    archive.tensors[name] = std::move(view);
    if (*end > *begin)
      ranges.emplace_back(uint64_t(*begin), uint64_t(*end), name);
  }
  llvm::sort(ranges);
  for (size_t i = 1; i < ranges.size(); ++i)
    if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
      return fail(path, "tensors '" + std::get<2>(ranges[i - 1]) + "' and '" +
                            std::get<2>(ranges[i]) +
                            "' overlap in the data section (data_offsets [" +
                            Twine(std::get<0>(ranges[i - 1])) + ", " +
                            Twine(std::get<1>(ranges[i - 1])) + ") and [" +
                            Twine(std::get<0>(ranges[i])) + ", " +
                            Twine(std::get<1>(ranges[i])) + "))");
  archive.buffer = std::move(buffer);
  return archive;
}

const TensorView *Archive::lookup(StringRef name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

std::vector<StringRef> Archive::names() const {
  std::vector<StringRef> out;
  for (const auto &entry : tensors)
    out.push_back(entry.getKey());
  return out;
}

Error rotor::safetensors::write(StringRef path, ArrayRef<OwnedTensor> tensors) {
  json::Object header;
  uint64_t offset = 0;
  for (const OwnedTensor &t : tensors) {
    json::Array shape;
    for (int64_t d : t.shape)
      shape.push_back(d);
    header[t.name] = json::Object{
        {"dtype", t.dtype},
        {"shape", std::move(shape)},
        {"data_offsets", json::Array{offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text;
  raw_string_ostream os(text);
  os << json::Value(std::move(header));
  os.flush();
  // Pad the header with spaces to 8 bytes, as the reference writer does.
  while (text.size() % 8)
    text.push_back(' ');

  std::error_code ec;
  raw_fd_ostream out(path, ec, sys::fs::OF_None);
  if (ec)
    return fail(path, "cannot write: " + ec.message());
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i)
    out << char((len >> (8 * i)) & 0xff);
  out << text;
  for (const OwnedTensor &t : tensors)
    out.write(reinterpret_cast<const char *>(t.bytes.data()), t.bytes.size());
  out.close();
  if (out.has_error())
    return fail(path, "write failed: " + out.error().message());
  return Error::success();
}
