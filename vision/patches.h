// 2.5D patches for the image branch: for each candidate, three orthogonal
// planes through its centre (axial, coronal, sagittal), resampled isotropically
// with trilinear interpolation, in a lung window, as the three channels of one
// image. Dependency-free (vision_core) so every build, the GPU machine's
// included, makes exactly the same patches for training and inference.
//
// Plane orientation (world LPS axes; S = size, pixel (row, col) sits at
// centre + (col - (S-1)/2) * spacing * u + (row - (S-1)/2) * spacing * v):
//   channel 0 axial:    u = +x (towards patient left), v = +y (posterior)
//                       -> the usual radiological axial view
//   channel 1 coronal:  u = +x (patient left),         v = -z (inferior)
//   channel 2 sagittal: u = +y (posterior),            v = -z (inferior)
// The centre lies between the four middle pixels. Outside the volume reads as
// air (-1000 HU).
//
// With a slab (PatchOptions::slab_mm > 0) each plane comes with its two
// neighbours, the same plane moved slab_mm back and forth along its normal
// (axial: z, coronal: y, sagittal: x of the frame), as nine channels:
// channel 3 * p + k is plane p (axial, coronal, sagittal) at offset
// (-slab_mm, 0, +slab_mm)[k]. A vessel crossing a plane stays a disc from one
// neighbour to the next; a nodule shrinks.
//
// With a zoom (PatchOptions::zoom_spacing_mm > 0) each plane comes twice, as
// six channels: channel 2 * p is plane p at spacing_mm, channel 2 * p + 1 the
// same plane through the same centre at zoom_spacing_mm (finer: a close look at
// a small nodule's edge, which the network's stride-4 stem otherwise reduces to
// a pixel or two). A slab and a zoom do not combine.
//
// Window: value = clamp((HU - (level - width/2)) / width, 0, 1), quantised to
// 1/255 steps, so the uint8 form (value * 255) is exact and training data
// exported as uint8 equals what inference sees. The network input is
// (value - mean) / std.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "model/progress.h"
#include "model/result.h"
#include "model/tensor.h"
#include "vision/volume.h"

namespace hilum {

struct PatchOptions {
  // The world directions the planes take as x, y and z (rows of an orthonormal
  // matrix). The identity gives the axial, coronal and sagittal planes above;
  // another frame (patch_frame) cuts the same three planes of a rotated cube,
  // oblique to the scanner's axes.
  std::array<Vec3, 3> frame = {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  int size = 64;               // pixels per side
  double spacing_mm = 0.7;     // pixel spacing
  double window_level = -600;  // HU
  double window_width = 1500;  // HU
  float mean = 0.5f;           // network input normalisation
  float std = 0.25f;
  double slab_mm = 0;          // 0: one plane per channel (3); > 0: nine channels, above
  double zoom_spacing_mm = 0;  // 0: one scale (3 channels); > 0: six channels, above
  static constexpr double kMaxSlabMm = 20;
  static constexpr double kMaxZoomSpacingMm = 5;
  int channels() const { return slab_mm > 0 ? 9 : zoom_spacing_mm > 0 ? 6 : 3; }
};

// The channels' names: axial, coronal, sagittal; with a slab of 2 mm
// axial-2mm, axial, axial+2mm, coronal-2mm, ...; with a zoom of 0.35 mm axial,
// axial@0.35mm, coronal, ... (manifests of exports).
std::vector<std::string> patch_channel_names(const PatchOptions& options);

// uint8 [N, C, size, size], C = options.channels(): windowed planes (0 = level -
// width/2 or below, 255 = top). kBadInput for options out of range (a slab or a
// zoom outside its limits, or both).
Result<Tensor> extract_patches_u8(const Volume& volume, const std::vector<Vec3>& centers_mm,
                                  const PatchOptions& options, Progress& progress);

// uint8 patches -> f32 network input [N, C, size, size]: (u8 / 255 - mean) / std.
Result<Tensor> patches_to_input(const Tensor& patches_u8, const PatchOptions& options);

// Both steps.
Result<Tensor> extract_patches(const Volume& volume, const std::vector<Vec3>& centers_mm,
                               const PatchOptions& options, Progress& progress);

// A view of patches [N, C, S, S] (any dtype of 1, 2 or 4 bytes) with every plane
// mirrored or transposed the same way, for test-time augmentation (the image
// branch was trained with these flips and transposes): "identity", "flip_x"
// (columns reversed), "flip_y" (rows reversed), "transpose" (rows <-> columns).
// kBadInput for another name or a non-square patch. "identity" returns the
// patches themselves (the same storage).
Result<Tensor> patch_view(const Tensor& patches, std::string_view view);
// The names patch_view knows, and whether `name` is one of them.
const std::vector<std::string>& patch_view_names();
bool is_patch_view(std::string_view name);

// Named frames for PatchOptions::frame: "axes" (the identity), "rz45",
// "rx45", "ry45" (45 degrees about the z, x or y axis: with "axes" they cut
// the three orthogonal planes and the six diagonal planes of a cube around the
// candidate, the nine views of Setio et al. 2016, in four triplets). kBadInput
// for another name.
Result<std::array<Vec3, 3>> patch_frame(std::string_view name);
const std::vector<std::string>& patch_frame_names();

// A view the fusion stage may average over (hilum analyze's test-time
// augmentation): a patch_view name, taken of the patches cut in the scanner's
// axes ("identity", "flip_x", ...), or an extra frame's name ("rz45", "rx45",
// "ry45"), the patches cut in that frame as they are. kBadInput naming the
// known views for anything else.
struct ViewSpec {
  std::string frame = "axes";
  std::string view = "identity";
};
Result<ViewSpec> parse_view_spec(std::string_view name);
// Every name parse_view_spec takes, comma-separated (for error messages).
std::string view_spec_names();

// Trilinear HU at a continuous voxel index (x, y, z); `outside` beyond the volume.
float sample_trilinear(const Volume& volume, double x, double y, double z, float outside = -1000.f);

}  // namespace hilum
