// A CT volume in Hounsfield units with its patient-space geometry, and the
// study facts that came with it.
//
// Geometry follows DICOM: world coordinates are LPS millimetres. Voxel (i, j, k)
// (column, row, slice) sits at
//   origin + i*spacing[0]*dir_x + j*spacing[1]*dir_y + k*spacing[2]*dir_z
// where dir_x, dir_y, dir_z are the columns of the row-major 3x3 `direction`.
// dir_x/dir_y come from ImageOrientationPatient, dir_z is the slice stacking
// direction (the sorted slice order), so it may be +/- the IOP normal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace hilum {

using Vec3 = std::array<double, 3>;

struct Volume {
  Tensor hu;  // f32, shape [slices, rows, columns] = (z, y, x), C order
  Vec3 spacing{1, 1, 1};  // mm along x (columns), y (rows), z (slices)
  Vec3 origin{0, 0, 0};   // LPS mm of voxel (0, 0, 0) = first sorted slice's IPP
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};  // row-major; columns = axes

  int64_t nx() const { return hu.defined() ? hu.dim(2) : 0; }
  int64_t ny() const { return hu.defined() ? hu.dim(1) : 0; }
  int64_t nz() const { return hu.defined() ? hu.dim(0) : 0; }
  const float* data() const { return hu.data<float>(); }
  float* data() { return hu.data<float>(); }
  float at(int64_t x, int64_t y, int64_t z) const { return data()[(z * ny() + y) * nx() + x]; }

  Vec3 axis(int a) const { return {direction[a], direction[3 + a], direction[6 + a]}; }
  // Continuous voxel index (x, y, z) -> LPS mm, and back.
  Vec3 world_from_voxel(const Vec3& ijk) const;
  Vec3 voxel_from_world(const Vec3& lps) const;

  // A zero-filled volume of the given size and geometry.
  static Volume allocate(int64_t nx, int64_t ny, int64_t nz, Vec3 spacing, Vec3 origin,
                         std::array<double, 9> direction = {1, 0, 0, 0, 1, 0, 0, 0, 1});
};

// Patient identifiers: never logged, never in error messages; they go only into
// the outputs a user asked for (report header, DICOM SR).
struct PatientIdentity {
  std::string name;
  std::string id;
  std::string birth_date;  // DICOM DA (YYYYMMDD)
  std::string sex;         // M / F / O / empty
};

// What a report needs to know about the study besides the pixels.
struct StudyInfo {
  PatientIdentity patient;  // PHI
  std::string patient_age;  // DICOM AS, e.g. "063Y" (not identifying on its own)
  std::string study_instance_uid;
  std::string series_instance_uid;
  std::string frame_of_reference_uid;
  std::string study_date;  // DA
  std::string study_time;
  std::string accession_number;
  std::string study_description;
  std::string series_description;
  std::string modality;
  std::string manufacturer;
  std::string institution_name;
  std::string body_part;
  std::string convolution_kernel;
  double slice_thickness_mm = 0;
  double kvp = 0;
  // SOP Class/Instance UIDs of the slices in sorted order, for SR references.
  std::vector<std::string> sop_class_uids;
  std::vector<std::string> sop_instance_uids;
};

}  // namespace hilum
