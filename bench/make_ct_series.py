#!/usr/bin/python3
"""Writes a synthetic axial CT series (one file per slice) for the DICOM load
benchmark when `hilum phantom` is not available: a body ellipse of soft
tissue, two lungs, a spine, Gaussian noise; signed 16-bit, intercept -1024,
PixelPaddingValue outside the body; explicit VR little endian.

  /usr/bin/python3 bench/make_ct_series.py OUTDIR [--slices 300] [--size 512]
"""
import argparse
import os

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    n, size = args.slices, args.size
    rng = np.random.default_rng(args.seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2, size / 2
    body = ((xx - cx) / (0.45 * size)) ** 2 + ((yy - cy) / (0.33 * size)) ** 2 <= 1
    lung_l = ((xx - cx + 0.2 * size) / (0.14 * size)) ** 2 + ((yy - cy) / (0.22 * size)) ** 2 <= 1
    lung_r = ((xx - cx - 0.2 * size) / (0.14 * size)) ** 2 + ((yy - cy) / (0.22 * size)) ** 2 <= 1
    spine = ((xx - cx) / (0.04 * size)) ** 2 + ((yy - cy - 0.25 * size) / (0.04 * size)) ** 2 <= 1
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    spacing, thickness = 0.7, 1.25
    for k in range(n):
        hu = np.full((size, size), -1000.0, dtype=np.float32)
        hu[body] = 40
        hu[lung_l | lung_r] = -850
        hu[spine] = 700
        hu += rng.normal(0, 15, hu.shape).astype(np.float32)
        stored = np.round(hu + 1024).astype(np.int16)
        stored[~body] = -2000  # padding outside the scan field
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientName = "BENCH^PHANTOM"
        ds.PatientID = "BENCH0001"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.SeriesDescription = "benchmark series"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-size * spacing / 2, -size * spacing / 2, -k * thickness]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing, spacing]
        ds.SliceThickness = thickness
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelPaddingValue = -2000
        ds.PixelData = stored.tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(os.path.join(args.out, f"CT{k:04d}.dcm"), write_like_original=False)
    print(f"wrote {n} slices of {size}x{size} to {args.out}")


if __name__ == "__main__":
    main()
