#include "app/report_content.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "vision/patches.h"

namespace hilum {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string format_dicom_date(const std::string& da) {
  if (da.size() == 8 && std::all_of(da.begin(), da.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return da.substr(0, 4) + "-" + da.substr(4, 2) + "-" + da.substr(6, 2);
  }
  return da;
}

std::string format_person_name(const std::string& pn) {
  // Only the alphabetic group (before '='); components family^given^middle^prefix^suffix.
  const std::string alpha = pn.substr(0, pn.find('='));
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t caret = alpha.find('^', start);
    parts.push_back(alpha.substr(start, caret == std::string::npos ? std::string::npos : caret - start));
    if (caret == std::string::npos) break;
    start = caret + 1;
  }
  std::string out = parts[0];
  std::string rest;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty()) continue;
    rest += (rest.empty() ? "" : " ") + parts[i];
  }
  if (!rest.empty()) out += (out.empty() ? "" : ", ") + rest;
  return out;
}

Result<KeyImage> make_key_image(const Volume& volume, const Finding& f, int pixels) {
  if (!volume.hu.defined() || volume.nz() == 0) return bad_input("key image: the volume has no pixels");
  const int slice = f.location.slice_index >= 0
                        ? f.location.slice_index
                        : static_cast<int>(std::lround(volume.voxel_from_world(f.center_mm)[2]));
  if (slice < 0 || slice >= volume.nz()) {
    return bad_input("key image: nodule " + std::to_string(f.id) + " lies on slice " + std::to_string(slice) +
                     ", outside the volume's " + std::to_string(volume.nz()) + " slices");
  }
  KeyImage k;
  k.finding_id = f.id;
  k.slice_index = slice;
  k.width = k.height = pixels;
  const double side_mm = std::max(60.0, 3.0 * f.long_axis_mm);
  k.mm_per_pixel = side_mm / pixels;
  k.center_x = k.center_y = pixels / 2.0;
  k.radius_px = std::max(f.long_axis_mm, 1.0) / 2 / k.mm_per_pixel;
  k.gray.resize(static_cast<size_t>(pixels) * pixels);
  const double low = -600 - 1500 / 2.0, width = 1500;
  for (int r = 0; r < pixels; ++r) {
    for (int c = 0; c < pixels; ++c) {
      // Pixel centres: the nodule centre lies between the four middle pixels.
      const double du = (c + 0.5 - pixels / 2.0) * k.mm_per_pixel;
      const double dv = (r + 0.5 - pixels / 2.0) * k.mm_per_pixel;
      const Vec3 world{f.center_mm[0] + du, f.center_mm[1] + dv, f.center_mm[2]};
      Vec3 v = volume.voxel_from_world(world);
      v[2] = slice;  // the acquired slice, not an interpolation between two
      const float hu = sample_trilinear(volume, v[0], v[1], v[2]);
      const double value = std::clamp((hu - low) / width, 0.0, 1.0);
      k.gray[static_cast<size_t>(r) * pixels + c] = static_cast<uint8_t>(std::lround(value * 255.0));
    }
  }
  k.caption = "Nodule " + std::to_string(f.id) + ": axial slice " + std::to_string(slice + 1) + " of " +
              std::to_string(volume.nz()) + ", lung window W1500/L-600, circle = long axis " +
              fixed(f.long_axis_mm, 1) + " mm";
  return k;
}

Result<ReportContent> build_report_content(const FindingsDocument& doc, const Volume& volume,
                                           const StudyInfo& study, const Narrative& narrative) {
  ReportContent r;
  r.title = "Chest CT: lung nodule report";
  r.header = {
      {"Patient", or_dash(format_person_name(study.patient.name))},
      {"Patient ID", or_dash(study.patient.id)},
      {"Birth date", or_dash(format_dicom_date(study.patient.birth_date))},
      {"Sex / age", or_dash(study.patient.sex) + " / " + or_dash(study.patient_age)},
      {"Study date", or_dash(format_dicom_date(study.study_date))},
      {"Accession", or_dash(study.accession_number)},
      {"Study", or_dash(study.study_description)},
      {"Series", or_dash(study.series_description.empty() ? doc.series_uid : study.series_description)},
  };
  for (const Finding& f : doc.findings) {
    ReportTableRow row;
    row.id = std::to_string(f.id);
    row.location = lobe_phrase(f.location) + (f.location.juxtapleural ? " (juxtapleural)" : "");
    row.long_axis = fixed(f.long_axis_mm, 1);
    row.short_axis = fixed(f.short_axis_mm, 1);
    row.mean_diameter = fixed(f.mean_diameter_mm, 1);
    row.volume = fixed(f.volume_mm3, 0);
    row.type = std::string(nodule_type_name(f.type));
    if (f.type == NoduleType::kPartSolid) row.type += " (solid " + fixed(f.solid_component_mm, 1) + " mm)";
    row.probability = fixed(f.probability, 2);
    row.malignancy = fixed(f.malignancy, 2);
    row.lung_rads = std::string(lung_rads_label(f.lung_rads.category));
    r.rows.push_back(std::move(row));
    for (const std::string& note : f.lung_rads.notes) {
      r.finding_notes.push_back("Nodule " + std::to_string(f.id) + ": " + note);
    }
  }
  const std::string study_cat =
      doc.lung_rads_study.empty() ? study_lung_rads(doc.findings) : doc.lung_rads_study;
  auto cat = parse_lung_rads(study_cat);
  if (!cat.ok()) return bad_input("report: study Lung-RADS category '" + study_cat + "' is unknown");
  r.study_lung_rads = study_cat + " (" + std::string(lung_rads_descriptor(*cat)) + ")";
  r.management = std::string(lung_rads_management(*cat));
  r.impression = narrative.text;
  switch (narrative.source) {
    case Narrative::Source::kModel:
      r.impression_label = "Impression - AI draft by the general text model: review and edit before use";
      break;
    case Narrative::Source::kTemplate:
      r.impression_label =
          "Impression - template generated from the structured findings (AI findings: review before use)";
      break;
    case Narrative::Source::kRadiologist:
      r.impression_label = "Impression - written by the radiologist";
      break;
  }
  r.impression_note = narrative.note;
  r.notes = doc.notes;
  r.footer = doc.generator + (doc.model_bundle.empty() ? "" : " | model bundle " + doc.model_bundle) +
             " | series " + doc.series_uid +
             (doc.clinical_text_used ? " | clinical text used" : " | no clinical text");
  if (study.study_date.size() == 8) {
    std::string time;
    for (char c : study.study_time) {
      if (c >= '0' && c <= '9' && time.size() < 6) time += c;
      if (c == '.') break;
    }
    time.resize(6, '0');
    r.document_time = study.study_date + time;
  }
  if (volume.hu.defined()) {
    for (const Finding& f : doc.findings) {
      HILUM_ASSIGN_OR_RETURN(KeyImage k, make_key_image(volume, f));
      r.images.push_back(std::move(k));
    }
  }
  return r;
}

}  // namespace hilum
