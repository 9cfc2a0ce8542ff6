//===- Tensor.cpp - Host tensors and safetensors files --------------------===//

#include "rotor-rt/Tensor.h"

#include "rotor-rt/File.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <tuple>

namespace rotor::rt {

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::I64:
    return 8;
  case DType::I8:
    return 1;
  }
  return 0;
}

std::optional<DType> parseSafetensorsDtype(const std::string &s) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "I8") return DType::I8;
  return std::nullopt;
}

std::optional<DType> parseMlirDtype(const std::string &s) {
  if (s == "f32") return DType::F32;
  if (s == "bf16") return DType::BF16;
  if (s == "f16") return DType::F16;
  if (s == "i32") return DType::I32;
  if (s == "i64") return DType::I64;
  if (s == "i8") return DType::I8;
  return std::nullopt;
}

const char *safetensorsName(DType t) {
  switch (t) {
  case DType::F32: return "F32";
  case DType::BF16: return "BF16";
  case DType::F16: return "F16";
  case DType::I32: return "I32";
  case DType::I64: return "I64";
  case DType::I8: return "I8";
  }
  return "?";
}

const char *mlirName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::BF16: return "bf16";
  case DType::F16: return "f16";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  case DType::I8: return "i8";
  }
  return "?";
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + "]";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {
uint16_t roundToBF16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if (std::isnan(f))
    return uint16_t((bits >> 16) | 0x40);
  return uint16_t((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}
} // namespace

double Tensor::at(size_t i) const {
  const uint8_t *p = bytes.data() + i * dtypeSize(dtype);
  switch (dtype) {
  case DType::F32: { float f; std::memcpy(&f, p, 4); return f; }
  case DType::BF16: { uint16_t b; std::memcpy(&b, p, 2); return std::bit_cast<float>(uint32_t(b) << 16); }
  case DType::F16: { _Float16 h; std::memcpy(&h, p, 2); return double(h); }
  case DType::I32: { int32_t x; std::memcpy(&x, p, 4); return x; }
  case DType::I64: { int64_t x; std::memcpy(&x, p, 8); return double(x); }
  case DType::I8: { int8_t x; std::memcpy(&x, p, 1); return x; }
  }
  return 0;
}

Tensor Tensor::fromDoubles(DType dtype, std::vector<int64_t> shape,
                           const std::vector<double> &values) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    uint8_t *p = t.bytes.data() + i * dtypeSize(dtype);
    double v = values[i];
    switch (dtype) {
    case DType::F32: { float f = float(v); std::memcpy(p, &f, 4); break; }
    // Through f32 first, as frameworks cast: one rounding from an f32 value.
    case DType::BF16: { uint16_t b = roundToBF16(float(v)); std::memcpy(p, &b, 2); break; }
    case DType::F16: { _Float16 h = _Float16(float(v)); std::memcpy(p, &h, 2); break; }
    case DType::I32: { int32_t x = int32_t(v); std::memcpy(p, &x, 4); break; }
    case DType::I64: { int64_t x = int64_t(v); std::memcpy(p, &x, 8); break; }
    case DType::I8: { int8_t x = int8_t(v); std::memcpy(p, &x, 1); break; }
    }
  }
  return t;
}

std::vector<double> Tensor::toDoubles() const {
  std::vector<double> v(static_cast<size_t>(numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = at(i);
  return v;
}

Tensor Tensor::convert(DType to) const {
  if (to == dtype)
    return *this;
  return fromDoubles(to, shape, toDoubles());
}

Result<std::map<std::string, Tensor>> readSafetensors(const std::string &path) {
  using R = Result<std::map<std::string, Tensor>>;
  Result<MappedFile> file = MappedFile::open(path);
  if (!file)
    return R::failure(file.error());
  const uint8_t *data = file->data();
  size_t size = file->size();
  if (size < 8)
    return R::failure(path + ": truncated: " + std::to_string(size) +
                      " bytes, not even the 8-byte header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | data[i];
  if (headerLen > size - 8)
    return R::failure(path + ": header length " + std::to_string(headerLen) +
                      " runs past the end of the file (" +
                      std::to_string(size) + " bytes)");
  // The reference implementation refuses headers over 100 MB too.
  if (headerLen > 100'000'000)
    return R::failure(path + ": header length " + std::to_string(headerLen) +
                      " is over the 100 MB safetensors allows");
  nlohmann::json header =
      nlohmann::json::parse(data + 8, data + 8 + headerLen, nullptr,
                            /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return R::failure(path + ": header is not a JSON object");
  size_t payloadStart = 8 + headerLen, payloadSize = size - payloadStart;
  std::map<std::string, Tensor> tensors;
  // Each tensor's [begin, end) in the data area, to refuse overlaps.
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> extents;
  for (auto &[name, entry] : header.items()) {
    if (name == "__metadata__")
      continue;
    auto bad = [&](const std::string &what) {
      return R::failure(path + ": tensor '" + name + "': " + what);
    };
    if (!entry.is_object() || !entry.contains("dtype") ||
        !entry["dtype"].is_string() || !entry.contains("shape") ||
        !entry["shape"].is_array() || !entry.contains("data_offsets") ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      return bad("needs dtype, shape and two data_offsets");
    std::optional<DType> dtype = parseSafetensorsDtype(entry["dtype"]);
    if (!dtype)
      return bad("unsupported dtype " + entry["dtype"].get<std::string>());
    Tensor t{*dtype, {}, {}};
    uint64_t count = 1;
    for (auto &d : entry["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX) ||
          __builtin_mul_overflow(count, d.get<uint64_t>(), &count))
        return bad("bad shape " + entry["shape"].dump());
      t.shape.push_back(d.get<int64_t>());
    }
    uint64_t byteCount;
    if (__builtin_mul_overflow(count, uint64_t(dtypeSize(*dtype)), &byteCount))
      return bad("shape " + entry["shape"].dump() + " is too large");
    auto &off = entry["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return bad("bad data_offsets");
    uint64_t begin = off[0], end = off[1];
    if (end < begin || end > payloadSize)
      return bad("data_offsets lie outside the " + std::to_string(payloadSize) +
                 " bytes of data");
    if (end - begin != byteCount)
      return bad(std::to_string(end - begin) + " bytes of data for shape " +
                 formatShape(t.shape));
    t.bytes.assign(data + payloadStart + begin, data + payloadStart + end);
    if (end > begin)
      extents.emplace_back(begin, end, name);
    tensors[name] = std::move(t);
  }
  // The format gives each tensor its own bytes: overlapping tensors are a
  // damaged or hostile file, and a write to one would change the other.
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i) {
    auto &[begin, end, name] = extents[i];
    auto &[prevBegin, prevEnd, prevName] = extents[i - 1];
    if (begin < prevEnd)
      return R::failure(path + ": tensor '" + name + "': data_offsets [" +
                        std::to_string(begin) + ", " + std::to_string(end) +
                        ") overlap those of '" + prevName + "' [" +
                        std::to_string(prevBegin) + ", " +
                        std::to_string(prevEnd) + ")");
  }
  return tensors;
}

Error writeSafetensors(const std::string &path,
                       const std::map<std::string, Tensor> &tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (auto &[name, t] : tensors) {
    header[name] = {{"dtype", safetensorsName(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  while (text.size() % 8)
    text.push_back(' ');
  char length[8];
  for (int i = 0; i < 8; ++i)
    length[i] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  std::vector<std::string_view> pieces = {std::string_view(length, 8), text};
  for (auto &[name, t] : tensors)
    pieces.emplace_back(reinterpret_cast<const char *>(t.bytes.data()),
                        t.bytes.size());
  return writeFileAtomically(path, pieces);
}

} // namespace rotor::rt
