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

static cl::list<std::string> positional(cl::Positional, cl::OneOrMore,
                                        cl::desc("analyze CAPTURES..."));
static cl::opt<std::string> outputDir("o", cl::desc("Output folder"),
                                      cl::value_desc("OUT_DIR"));
static cl::opt<std::string>
    bAxisName("b-axis", cl::desc("eigen (default): top eigenvector of "
                                 "P·C_δ·P; centroid: P(μ_Q − μ_K)"),
              cl::init("eigen"));
static cl::opt<std::string> headsOpt("heads",
                                     cl::desc("Only these heads: L:H,..."),
                                     cl::init(""));
static cl::opt<int64_t>
    maxSamples("max-samples",
               cl::desc("At most N rows of Q and of K per layer, evenly "
                        "spaced (deterministic); 0: all"),
               cl::init(0));
static cl::opt<bool> quiet("quiet", cl::desc("No progress on stderr"));

namespace {

int fail(const std::string &message) {
  llvm::errs() << "rotor-qk: " << message << "\n";
  return 1;
}

/// One tag's rows across the files: each file's view.
struct TagParts {
  std::vector<std::pair<std::string, const rotor::safetensors::TensorView *>>
      data, positions;
};

/// Q and K of one layer, as read.
struct LayerData {
  int64_t heads = 0, dim = 0;
  std::vector<double> rows;
  std::vector<int64_t> positions;
};

/// The rows of a tag (f32 [N, H, D]) and their positions (i64 [N]), every
/// value checked; at most `limit` rows, evenly spaced, when limit > 0.
std::optional<std::string> readTag(StringRef tag, const TagParts &parts,
                                   int64_t limit, LayerData &out) {
  if (parts.positions.size() != parts.data.size())
    for (auto &[file, view] : parts.data) {
      bool found = llvm::any_of(parts.positions,
                                [&](auto &p) { return p.first == file; });
      if (!found)
        return file + ": capture " + tag.str() + " has no " + tag.str() +
               ".positions (rotor-run --captures writes both)";
    }
  std::vector<double> rows;
  std::vector<int64_t> positions;
  for (size_t i = 0; i < parts.data.size(); ++i) {
    auto [file, view] = parts.data[i];
    auto pos = parts.positions[i].second;
    if (view->dtype != "F32" || view->shape.size() != 3)
      return file + ": " + tag.str() + " must be F32 [N, heads, head_dim]";
    if (pos->dtype != "I64" || pos->shape.size() != 1 ||
        pos->shape[0] != view->shape[0])
      return file + ": " + tag.str() + ".positions must be I64 [" +
             std::to_string(view->shape[0]) + "]";
    if (out.heads && (view->shape[1] != out.heads || view->shape[2] != out.dim))
      return file + ": " + tag.str() + " has another shape than in the "
                                        "files before it";
    out.heads = view->shape[1];
    out.dim = view->shape[2];
    int64_t width = out.heads * out.dim;
    for (int64_t r = 0; r < view->shape[0]; ++r) {
      int64_t p;
      std::memcpy(&p, pos->bytes.data() + 8 * r, 8);
      positions.push_back(p);
      for (int64_t e = 0; e < width; ++e) {
        float f;
        std::memcpy(&f, view->bytes.data() + 4 * (r * width + e), 4);
        if (!std::isfinite(f))
          return file + ": " + tag.str() + " row " + std::to_string(r) +
                 " has a non-finite value";
        rows.push_back(f);
      }
    }
  }
  int64_t n = positions.size(), width = out.heads * out.dim;
  int64_t take = limit > 0 ? std::min(n, limit) : n;
  for (int64_t i = 0; i < take; ++i) {
    int64_t r = n * i / take;
    out.positions.push_back(positions[r]);
    out.rows.insert(out.rows.end(), rows.begin() + r * width,
                    rows.begin() + (r + 1) * width);
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

bool writeFile(const std::string &path, StringRef text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return false;
  os << text;
  return !os.has_error();
}

std::string pathIn(StringRef dir, StringRef name) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, name);
  return std::string(p);
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
  for (const HeadMetrics &m : all) {
    if (!m.positionSignal) {
      silent.push_back(std::to_string(m.layer) + ":" + std::to_string(m.qHead));
      continue;
    }
    ++count;
    rq += std::abs(m.rQA);
    rk += std::abs(m.rKA);
    plane += m.planeVarFraction;
    positive += m.biasStrength > 0;
    if (m.alphaQ != 0)
      ratios.push_back(std::abs(m.alphaK) / std::abs(m.alphaQ));
  }
  auto avg = [&](double s) -> llvm::json::Value {
    if (!count)
      return nullptr;
    return s / count;
  };
  double med = median(ratios);
  return llvm::json::Object{
      {"heads", int64_t(all.size())},
      {"heads_with_position_signal", count},
      {"heads_without_position_signal", std::move(silent)},
      {"mean_abs_r_q_a", avg(rq)},
      {"mean_abs_r_k_a", avg(rk)},
      {"mean_plane_var_fraction", avg(plane)},
      {"median_abs_alpha_k_over_alpha_q",
       std::isnan(med) ? llvm::json::Value(nullptr) : llvm::json::Value(med)},
      {"fraction_positive_bias_strength",
       count ? llvm::json::Value(double(positive) / count)
             : llvm::json::Value(nullptr)}};
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
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
      (isPositions ? parts.positions : parts.data)
          .push_back({file, archives.back()->lookup(name)});
    }
  }
  if (layers.empty())
    return fail("no captures of Q and K (layerN.q, layerN.k) in " + files[0] +
                (files.size() > 1 ? " and the other files" : ""));

  std::vector<HeadMetrics> all;
  std::string csv = std::string(csvHeader()) + "\n";
  std::vector<rotor::safetensors::OwnedTensor> axes;
  std::map<std::string, std::string> figures;
  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                     "<title>rotor-qk</title></head><body>\n<h1>Planar "
                     "rotation of post-RoPE Q and K</h1>\n";
  for (auto &[layer, tags] : layers) {
    auto q = tags.find("q"), k = tags.find("k");
    if (q == tags.end() || q->second.data.empty())
      return fail("layer " + std::to_string(layer) + " has K captures but no Q "
                  "(layer" + std::to_string(layer) + ".q)");
    if (k == tags.end() || k->second.data.empty())
      return fail("layer " + std::to_string(layer) + " has Q captures but no K "
                  "(layer" + std::to_string(layer) + ".k)");
    LayerData qd, kd;
    std::string qTag = "layer" + std::to_string(layer) + ".q";
    std::string kTag = "layer" + std::to_string(layer) + ".k";
    if (auto err = readTag(qTag, q->second, maxSamples, qd))
      return fail(*err);
    if (auto err = readTag(kTag, k->second, maxSamples, kd))
      return fail(*err);
    if (qd.dim != kd.dim || kd.heads == 0 || qd.heads % kd.heads != 0)
      return fail("layer " + std::to_string(layer) + ": Q has " +
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
      csv += csvRow(m) + "\n";
      figures[dir + "/head" + std::to_string(h) + ".svg"] =
          headScatterSvg(samples, m);
      if (m.positionSignal)
        for (auto [name, v] : {std::pair("a", &m.a), std::pair("b", &m.b)}) {
          rotor::safetensors::OwnedTensor t{
              dir + ".head" + std::to_string(h) + "." + name, "F64",
              {int64_t(v->size())}, {}};
          t.bytes.resize(v->size() * 8);
          std::memcpy(t.bytes.data(), v->data(), t.bytes.size());
          axes.push_back(std::move(t));
        }
      heads.push_back(std::move(m));
    }
    if (heads.empty())
      continue;
    figures[dir + "/heatmaps.svg"] = layerHeatmapSvg(heads);
    figures[dir + "/bars.svg"] = layerBarsSvg(heads);
    html += "<h2>Layer " + std::to_string(layer) + "</h2>\n<img src=\"" + dir +
            "/heatmaps.svg\"><br>\n<img src=\"" + dir + "/bars.svg\"><br>\n";
    for (const HeadMetrics &m : heads)
      html += "<img src=\"" + dir + "/head" + std::to_string(m.qHead) +
              ".svg\">\n";
    all.insert(all.end(), heads.begin(), heads.end());
  }
  if (all.empty())
    return fail("--heads: none of the given heads is in the captures");
  html += "<p>rotated.csv and summary.json hold the numbers; docs/QK.md "
          "says what each means.</p>\n</body></html>\n";

  // Everything goes into a fresh sibling, which replaces OUT_DIR only once
  // complete; an OUT_DIR that is not a previous analysis is never touched.
  std::string out = outputDir;
  while (out.size() > 1 && (out.back() == '/'))
    out.pop_back();
  if (llvm::sys::fs::exists(out)) {
    std::error_code ec;
    llvm::sys::fs::directory_iterator it(out, ec);
    bool empty = !ec && it == llvm::sys::fs::directory_iterator();
    if (!llvm::sys::fs::is_directory(out) ||
        (!empty && !llvm::sys::fs::exists(pathIn(out, "rotated.csv"))))
      return fail(outputDir + ": exists and is not an earlier rotor-qk "
                              "analysis (no rotated.csv); refusing to replace "
                              "it");
  }
  llvm::SmallString<256> staging;
  llvm::sys::fs::createUniquePath(out + ".partial-%%%%%%", staging, false);
  if (std::error_code ec = llvm::sys::fs::create_directories(staging))
    return fail(std::string(staging) + ": cannot create: " + ec.message());
  auto abandon = [&](const std::string &why) {
    llvm::sys::fs::remove_directories(staging);
    return fail(why);
  };
  std::string summary;
  llvm::raw_string_ostream(summary)
      << llvm::formatv("{0:2}", llvm::json::Value(summarize(all))) << "\n";
  std::map<std::string, std::string> texts = {
      {"rotated.csv", csv}, {"summary.json", summary}, {"index.html", html}};
  texts.insert(figures.begin(), figures.end());
  for (auto &[name, text] : texts) {
    std::string path = pathIn(staging, name);
    llvm::sys::fs::create_directories(llvm::sys::path::parent_path(path));
    if (!writeFile(path, text))
      return abandon(path + ": cannot write");
  }
  if (llvm::Error err =
          rotor::safetensors::write(pathIn(staging, "axes.safetensors"), axes))
    return abandon(llvm::toString(std::move(err)));
  if (llvm::sys::fs::exists(out))
    llvm::sys::fs::remove_directories(out);
  if (std::error_code ec = llvm::sys::fs::rename(staging, out))
    return abandon(out + ": cannot put the analysis in place: " + ec.message());
  if (!quiet)
    llvm::errs() << "rotor-qk: " << all.size() << " heads analysed: " << out
                 << "/index.html\n";
  return 0;
}
