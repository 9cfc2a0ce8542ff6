//===- rotor-qk.cpp - The planar rotation analysis of captured Q and K ----===//
//
// rotor-qk analyze CAPTURES.safetensors [more...] -o OUT_DIR
//     [--b-axis eigen|centroid] [--heads L:H,...] [--max-samples N]
//
// Reads rotor-run's capture files (per layer `layerN.q` [N, Hq, D] and
// `layerN.k` [N, Hkv, D], f32, each with `.positions` [N], i64; rows of a
// tag in several files are concatenated in file order), one layer at a
// time, and writes OUT_DIR/rotated.csv, summary.json, axes.safetensors,
// SVG figures and index.html. OUT_DIR is written whole or not at all.
//
//===----------------------------------------------------------------------===//

#include "PlanarRotation.h"
#include "Plots.h"

#include "rotor/Support/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

using namespace rotor::qk;
namespace cl = llvm::cl;
using llvm::StringRef;

/// The tool's own options: --help lists these, not LLVM's.
static cl::OptionCategory qkOptions("rotor-qk options");

static cl::list<std::string> positional(cl::Positional, cl::OneOrMore,
                                        cl::desc("analyze CAPTURES..."),
                                        cl::cat(qkOptions));
static cl::opt<std::string> outputDir("o", cl::desc("Output folder"),
                                      cl::value_desc("OUT_DIR"),
                                      cl::cat(qkOptions));
static cl::opt<std::string>
    bAxisName("b-axis",
              cl::desc("eigen (default): top eigenvector of "
                       "P·C_δ·P; centroid: P(μ_Q − μ_K)"),
              cl::init("eigen"), cl::cat(qkOptions));
static cl::opt<std::string> headsOpt("heads",
                                     cl::desc("Only these heads: L:H,..."),
                                     cl::init(""), cl::cat(qkOptions));
static cl::opt<int64_t>
    maxSamples("max-samples",
               cl::desc("At most N rows of Q and of K per layer, evenly "
                        "spaced (deterministic); 0: all"),
               cl::init(0), cl::cat(qkOptions));
static cl::opt<bool> quiet("quiet", cl::desc("No progress on stderr"),
                           cl::cat(qkOptions));

namespace {

int fail(const std::string &message) {
  llvm::errs() << "rotor-qk: " << message << "\n";
  return 1;
}

/// One file's part of a tag: its rows and their positions.
struct TagPart {
  std::string file;
  const rotor::safetensors::TensorView *data = nullptr, *positions = nullptr;
};

/// One tag's parts, in file order.
using TagParts = std::vector<TagPart>;

/// Q and K of one layer, as read.
struct LayerData {
  int64_t heads = 0, dim = 0;
  std::vector<double> rows;
  std::vector<int64_t> positions;
};

/// The rows of a tag (f32 [N, H, D], each file's rows with that file's
/// positions, i64 [N]) in file order, every value checked; at most `limit`
/// rows, evenly spaced (row n·i/limit of the concatenation), when
/// limit > 0. Only the kept rows are held in memory.
std::optional<std::string> readTag(StringRef tag, const TagParts &parts,
                                   int64_t limit, LayerData &out) {
  int64_t n = 0;
  for (const TagPart &part : parts) {
    if (!part.data)
      return part.file + ": " + tag.str() + ".positions without " + tag.str();
    if (!part.positions)
      return part.file + ": capture " + tag.str() + " has no " + tag.str() +
             ".positions (rotor-run --captures writes both)";
    const auto &view = *part.data;
    if (view.dtype != "F32" || view.shape.size() != 3)
      return part.file + ": " + tag.str() + " must be F32 [N, heads, head_dim]";
    if (part.positions->dtype != "I64" || part.positions->shape.size() != 1 ||
        part.positions->shape[0] != view.shape[0])
      return part.file + ": " + tag.str() + ".positions must be I64 [" +
             std::to_string(view.shape[0]) + "]";
    if (view.shape[1] < 1 || view.shape[2] < 1)
      return part.file + ": " + tag.str() + " has no heads or no head dims";
    if (out.heads && (view.shape[1] != out.heads || view.shape[2] != out.dim))
      return part.file + ": " + tag.str() + " has another shape than in the "
                                            "files before it";
    out.heads = view.shape[1];
    out.dim = view.shape[2];
    n += view.shape[0];
  }
  if (n == 0)
    return tag.str() + " has no rows";
  int64_t width = out.heads * out.dim;
  int64_t take = limit > 0 ? std::min(n, limit) : n;
  int64_t next = 0, kept = 0, base = 0;
  for (const TagPart &part : parts) {
    const auto &view = *part.data;
    for (int64_t r = 0; r < view.shape[0]; ++r) {
      bool keep = kept < take && base + r == next;
      for (int64_t e = 0; e < width; ++e) {
        float f;
        std::memcpy(&f, view.bytes.data() + 4 * (r * width + e), 4);
        if (!std::isfinite(f))
          return part.file + ": " + tag.str() + " row " + std::to_string(r) +
                 " has a non-finite value";
        if (keep)
          out.rows.push_back(f);
      }
      if (keep) {
        int64_t p;
        std::memcpy(&p, part.positions->bytes.data() + 8 * r, 8);
        out.positions.push_back(p);
        ++kept;
        next = n * kept / take;
      }
    }
    base += view.shape[0];
  }
  return std::nullopt;
}

HeadSamples headSamples(const LayerData &q, const LayerData &k, int64_t h,
                        int64_t g) {
  HeadSamples s;
  auto fill = [](const LayerData &data, int64_t head, Eigen::MatrixXd &m,
                 Eigen::VectorXd &t) {
    int64_t n = data.positions.size();
    m.resize(n, data.dim);
    t.resize(n);
    for (int64_t r = 0; r < n; ++r) {
      t[r] = double(data.positions[r]);
      for (int64_t e = 0; e < data.dim; ++e)
        m(r, e) = data.rows[(r * data.heads + head) * data.dim + e];
    }
  };
  fill(q, h, s.q, s.tq);
  fill(k, g, s.k, s.tk);
  return s;
}

std::string pathIn(StringRef dir, StringRef name) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, name);
  return std::string(p);
}

bool writeFile(const std::string &path, StringRef text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os << text;
  os.close();
  // A stream destroyed with its error set aborts the process.
  bool ok = !os.has_error();
  os.clear_error();
  return ok;
}

/// The marker rotor-qk leaves in every analysis it writes.
constexpr const char *kMarker = ".rotor-qk-analysis";

/// Whether `dir` holds an earlier analysis and nothing else: the marker,
/// the files rotor-qk writes, and layerN folders of SVG figures. Such a
/// folder may be replaced; any other is left alone.
bool isEarlierAnalysis(const std::string &dir) {
  if (!llvm::sys::fs::exists(pathIn(dir, kMarker)))
    return false;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (llvm::is_contained({StringRef(kMarker), StringRef("rotated.csv"),
                            StringRef("summary.json"), StringRef("index.html"),
                            StringRef("axes.safetensors")},
                           name))
      continue;
    if (!name.starts_with("layer") || !llvm::sys::fs::is_directory(it->path()))
      return false;
    for (llvm::sys::fs::directory_iterator f(it->path(), ec); !ec && f != end;
         f.increment(ec))
      if (llvm::sys::path::extension(f->path()) != ".svg" ||
          !llvm::sys::fs::is_regular_file(f->path()))
        return false;
  }
  return !ec;
}


double median(std::vector<double> v) {
  if (v.empty())
    return std::nan("");
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

llvm::json::Object summarize(const std::vector<HeadMetrics> &all) {
  double rq = 0, rk = 0, plane = 0;
  int64_t count = 0, positive = 0;
  std::vector<double> ratios;
  llvm::json::Array silent;
  // Means over the heads where each value is defined (a head with one Q
  // row has no r_q_a or alpha_q).
  int64_t nq = 0, nk = 0, np = 0, nb = 0;
  for (const HeadMetrics &m : all) {
    if (!m.positionSignal) {
      silent.push_back(std::to_string(m.layer) + ":" + std::to_string(m.qHead));
      continue;
    }
    ++count;
    if (!std::isnan(m.rQA))
      rq += std::abs(m.rQA), ++nq;
    if (!std::isnan(m.rKA))
      rk += std::abs(m.rKA), ++nk;
    if (!std::isnan(m.planeVarFraction))
      plane += m.planeVarFraction, ++np;
    if (!std::isnan(m.biasStrength))
      positive += m.biasStrength > 0, ++nb;
    double ratio = std::abs(m.alphaK) / std::abs(m.alphaQ);
    if (std::isfinite(ratio))
      ratios.push_back(ratio);
  }
  auto mean = [](double s, int64_t n) -> llvm::json::Value {
    if (!n)
      return nullptr;
    return s / n;
  };
  double med = median(ratios);
  return llvm::json::Object{
      {"heads", int64_t(all.size())},
      {"heads_with_position_signal", count},
      {"heads_without_position_signal", std::move(silent)},
      {"mean_abs_r_q_a", mean(rq, nq)},
      {"mean_abs_r_k_a", mean(rk, nk)},
      {"mean_plane_var_fraction", mean(plane, np)},
      {"median_abs_alpha_k_over_alpha_q",
       std::isnan(med) ? llvm::json::Value(nullptr) : llvm::json::Value(med)},
      {"fraction_positive_bias_strength", mean(positive, nb)}};
}

/// What the analysis writes, gathered over the layers.
struct Analysis {
  std::vector<HeadMetrics> all;
  std::string csv = std::string(csvHeader()) + "\n";
  std::vector<rotor::safetensors::OwnedTensor> axes;
  std::map<std::string, std::string> figures;
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                     "<title>rotor-qk</title></head><body>\n<h1>Planar "
                     "rotation of post-RoPE Q and K</h1>\n";
};

/// Reads one layer's Q and K and analyses its heads (those of `only`, when
/// given) into `out`: nullopt, or the error.
std::optional<std::string>
analyzeLayer(int64_t layer, const std::map<std::string, TagParts> &tags,
             const std::set<std::pair<int64_t, int64_t>> &only, BAxis bAxis,
             Analysis &out) {
  auto q = tags.find("q"), k = tags.find("k");
  if (q == tags.end() || q->second.empty())
    return std::string("layer " + std::to_string(layer) + " has K captures but no Q "
                "(layer" + std::to_string(layer) + ".q)");
  if (k == tags.end() || k->second.empty())
    return std::string("layer " + std::to_string(layer) + " has Q captures but no K "
                "(layer" + std::to_string(layer) + ".k)");
  LayerData qd, kd;
  std::string qTag = "layer" + std::to_string(layer) + ".q";
  std::string kTag = "layer" + std::to_string(layer) + ".k";
  if (auto err = readTag(qTag, q->second, maxSamples, qd))
    return *err;
  if (auto err = readTag(kTag, k->second, maxSamples, kd))
    return *err;
  if (qd.dim != kd.dim || kd.heads == 0 || qd.heads % kd.heads != 0)
    return std::string("layer " + std::to_string(layer) + ": Q has " +
                std::to_string(qd.heads) + " heads of " +
                std::to_string(qd.dim) + " and K " +
                std::to_string(kd.heads) + " heads of " +
                std::to_string(kd.dim) +
                ": Q's heads must be a multiple of K's, of one head dim");
  if (!quiet)
    llvm::errs() << "rotor-qk: layer " << layer << ": " << qd.heads
                 << " query heads over " << kd.heads << " key heads, "
                 << qd.positions.size() << " Q and " << kd.positions.size()
                 << " K rows\n";
  std::vector<HeadMetrics> heads;
  std::string dir = "layer" + std::to_string(layer);
  for (int64_t h = 0; h < qd.heads; ++h) {
    if (!only.empty() && !only.count({layer, h}))
      continue;
    int64_t g = h / (qd.heads / kd.heads);
    HeadSamples samples = headSamples(qd, kd, h, g);
    HeadMetrics m = analyzeHead(samples, bAxis);
    m.layer = layer;
    m.qHead = h;
    m.kHead = g;
    out.csv += csvRow(m) + "\n";
    out.figures[dir + "/head" + std::to_string(h) + ".svg"] =
        headScatterSvg(samples, m);
    if (m.positionSignal)
      for (auto [name, v] : {std::pair("a", &m.a), std::pair("b", &m.b)}) {
        if (!v->allFinite())
          continue;
        rotor::safetensors::OwnedTensor t{
            dir + ".head" + std::to_string(h) + "." + name, "F64",
            {int64_t(v->size())}, {}};
        t.bytes.resize(v->size() * 8);
        std::memcpy(t.bytes.data(), v->data(), t.bytes.size());
        out.axes.push_back(std::move(t));
      }
    heads.push_back(std::move(m));
  }
  if (heads.empty())
    return std::nullopt;
  out.figures[dir + "/heatmaps.svg"] = layerHeatmapSvg(heads);
  out.figures[dir + "/bars.svg"] = layerBarsSvg(heads);
  out.html += "<h2>Layer " + std::to_string(layer) + "</h2>\n<img src=\"" + dir +
          "/heatmaps.svg\"><br>\n<img src=\"" + dir + "/bars.svg\"><br>\n";
  for (const HeadMetrics &m : heads)
    out.html += "<img src=\"" + dir + "/head" + std::to_string(m.qHead) +
            ".svg\">\n";
  out.all.insert(out.all.end(), heads.begin(), heads.end());
  return std::nullopt;
}

/// Writes the analysis to OUT_DIR, whole or not at all: nullopt, or the
/// error.
std::optional<std::string> writeAnalysis(const Analysis &a,
                                         const std::vector<std::string> &files) {
  // Everything goes into a fresh sibling, which replaces OUT_DIR only once
  // complete. An existing OUT_DIR is replaced only when it is an earlier
  // analysis and nothing else (not a link, no input inside it).
  std::string out = outputDir;
  while (out.size() > 1 && (out.back() == '/'))
    out.pop_back();
  bool replacing = false;
  if (llvm::sys::fs::exists(out) || llvm::sys::fs::is_symlink_file(out)) {
    std::error_code ec;
    llvm::sys::fs::directory_iterator it(out, ec);
    bool empty = !ec && it == llvm::sys::fs::directory_iterator();
    if (llvm::sys::fs::is_symlink_file(out) || !llvm::sys::fs::is_directory(out) ||
        (!empty && !isEarlierAnalysis(out)))
      return std::string(outputDir + ": exists and is not an earlier rotor-qk "
                              "analysis (a folder holding only what rotor-qk "
                              "writes); refusing to replace it");
    llvm::SmallString<256> outReal;
    llvm::sys::fs::real_path(out, outReal);
    for (const std::string &file : files) {
      llvm::SmallString<256> fileReal;
      llvm::sys::fs::real_path(file, fileReal);
      if (StringRef(fileReal).starts_with(std::string(outReal) + "/"))
        return std::string(outputDir + ": holds the input " + file +
                    "; refusing to replace it");
    }
    replacing = !empty;
  }
  llvm::SmallString<256> staging;
  llvm::sys::fs::createUniquePath(out + ".partial-%%%%%%", staging, false);
  if (std::error_code ec = llvm::sys::fs::create_directories(staging))
    return std::string(std::string(staging) + ": cannot create: " + ec.message());
  auto abandon = [&](const std::string &why) {
    llvm::sys::fs::remove_directories(staging);
    return std::string(why);
  };
  std::string summary;
  llvm::raw_string_ostream(summary)
      << llvm::formatv("{0:2}", llvm::json::Value(summarize(a.all))) << "\n";
  std::map<std::string, std::string> texts = {
      {"rotated.csv", a.csv}, {"summary.json", summary}, {"index.html", a.html}};
  texts.insert(a.figures.begin(), a.figures.end());
  for (auto &[name, text] : texts) {
    std::string path = pathIn(staging, name);
    llvm::sys::fs::create_directories(llvm::sys::path::parent_path(path));
    if (!writeFile(path, text))
      return abandon(path + ": cannot write");
  }
  if (llvm::Error err =
          rotor::safetensors::write(pathIn(staging, "axes.safetensors"), a.axes))
    return abandon(llvm::toString(std::move(err)));
  if (!writeFile(pathIn(staging, kMarker), "rotor-qk analyze\n"))
    return abandon(std::string(staging) + ": cannot write");
  // The earlier analysis steps aside first, so that OUT_DIR always holds a
  // whole analysis; it is removed once the new one is in place.
  llvm::SmallString<256> earlier;
  if (replacing) {
    llvm::sys::fs::createUniquePath(out + ".earlier-%%%%%%", earlier, false);
    if (std::error_code ec = llvm::sys::fs::rename(out, earlier))
      return abandon(out + ": cannot move the earlier analysis aside: " +
                     ec.message());
  } else if (llvm::sys::fs::exists(out)) {
    llvm::sys::fs::remove(out); // empty
  }
  if (std::error_code ec = llvm::sys::fs::rename(staging, out)) {
    if (replacing)
      llvm::sys::fs::rename(earlier, out);
    return abandon(out + ": cannot put the analysis in place: " + ec.message());
  }
  if (replacing)
    llvm::sys::fs::remove_directories(earlier);
  if (!quiet)
    llvm::errs() << "rotor-qk: " << a.all.size() << " heads analysed: " << out
                 << "/index.html\n";
  return std::nullopt;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(qkOptions);
  cl::ParseCommandLineOptions(
      argc, argv,
      "rotor-qk: the planar rotation analysis of post-RoPE Q and K captured "
      "by rotor-run --captures (docs/QK.md)\n\n"
      "  rotor-qk analyze CAPTURES.safetensors [more...] -o OUT_DIR\n"
      "      [--b-axis eigen|centroid] [--heads L:H,...] [--max-samples N]\n");
  if (positional.front() != "analyze")
    return fail("unknown command '" + positional.front() +
                "' (expected: analyze CAPTURES... -o OUT_DIR)");
  std::vector<std::string> files(positional.begin() + 1, positional.end());
  if (files.empty())
    return fail("analyze: no capture files given");
  if (outputDir.empty())
    return fail("analyze: no output folder given (-o OUT_DIR)");
  BAxis bAxis;
  if (bAxisName == "eigen")
    bAxis = BAxis::Eigen;
  else if (bAxisName == "centroid")
    bAxis = BAxis::Centroid;
  else
    return fail("--b-axis must be eigen or centroid, not '" + bAxisName + "'");
  if (maxSamples < 0)
    return fail("--max-samples must be >= 0");
  std::set<std::pair<int64_t, int64_t>> only;
  if (!headsOpt.empty()) {
    llvm::SmallVector<StringRef> items;
    StringRef(headsOpt).split(items, ',');
    for (StringRef item : items) {
      auto [l, h] = item.trim().split(':');
      int64_t layer, head;
      if (l.getAsInteger(10, layer) || h.getAsInteger(10, head) || layer < 0 ||
          head < 0)
        return fail("--heads: '" + item.str() + "' is not LAYER:HEAD");
      only.insert({layer, head});
    }
  }

  // Every file's tags, by layer; nothing is read yet (the files are mapped).
  std::vector<std::unique_ptr<rotor::safetensors::Archive>> archives;
  std::map<int64_t, std::map<std::string, TagParts>> layers;
  for (const std::string &file : files) {
    llvm::Expected<rotor::safetensors::Archive> archive =
        rotor::safetensors::Archive::open(file);
    if (!archive)
      return fail(llvm::toString(archive.takeError()));
    archives.push_back(
        std::make_unique<rotor::safetensors::Archive>(std::move(*archive)));
    for (StringRef name : archives.back()->names()) {
      StringRef rest = name;
      bool isPositions = rest.consume_back(".positions");
      int64_t layer;
      if (!rest.consume_front("layer"))
        continue;
      auto [number, which] = rest.split('.');
      if (number.getAsInteger(10, layer) || (which != "q" && which != "k"))
        continue;
      TagParts &parts = layers[layer][which.str()];
      if (parts.empty() || parts.back().file != file)
        parts.push_back({file, nullptr, nullptr});
      (isPositions ? parts.back().positions : parts.back().data) =
          archives.back()->lookup(name);
    }
  }
  if (layers.empty())
    return fail("no captures of Q and K (layerN.q, layerN.k) in " + files[0] +
                (files.size() > 1 ? " and the other files" : ""));

  Analysis analysis;
  for (auto &[layer, tags] : layers)
    if (auto err = analyzeLayer(layer, tags, only, bAxis, analysis))
      return fail(*err);
  for (auto [layer, head] : only)
    if (!llvm::any_of(analysis.all, [&](const HeadMetrics &m) {
          return m.layer == layer && m.qHead == head;
        }))
      return fail("--heads: layer " + std::to_string(layer) + " head " +
                  std::to_string(head) + " is not in the captures");
  analysis.html += "<p>rotated.csv and summary.json hold the numbers; "
                   "docs/QK.md says what each means.</p>\n</body></html>\n";
  if (auto err = writeAnalysis(analysis, files))
    return fail(*err);
  return 0;
}
