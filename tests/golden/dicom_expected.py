#!/usr/bin/python3
"""Expected values for the DICOM loader tests, computed with pydicom + numpy.

Reads the test files that Debian's python3-pydicom ships and writes
tests/golden/dicom_expected.json: per file the geometry and the modality
values (HU for CT) after masking to BitsStored, sign extension, padding and
rescale (statistics plus sampled pixels), and per volume the sorted geometry.

Compressed files are decoded by pydicom's GDCM handler (python3-gdcm) when it
is installed; lossless ones are also checked here against their uncompressed
twin (MR_small.dcm family), so the expected values do not depend on that
decoder. Lossy files carry a tolerance: two JPEG / JPEG 2000 decoders may
round the inverse transform differently.

Run:  /usr/bin/python3 tests/golden/dicom_expected.py   (from the repository root)
"""
import json
import os
import sys

import numpy as np
import pydicom
import pydicom.data
from pydicom import config

ROOT = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dicom_expected.json")

# name, twin (uncompressed file with the same pixels) or None, lossy tolerance (0 = exact)
FILES = [
    ("CT_small.dcm", None, 0),
    ("MR_small.dcm", None, 0),
    ("MR_small_implicit.dcm", "MR_small.dcm", 0),
    ("MR_small_bigendian.dcm", "MR_small.dcm", 0),
    ("MR_small_expb.dcm", "MR_small.dcm", 0),
    ("MR_small_padded.dcm", "MR_small.dcm", 0),
    ("MR_small_RLE.dcm", "MR_small.dcm", 0),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", 0),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", 0),
    ("image_dfl.dcm", None, 0),                # deflated explicit VR little endian
    ("J2K_pixelrep_mismatch.dcm", None, 0),    # JPEG 2000 lossless, unsigned codestream, signed header
    ("693_J2KI.dcm", None, 2),                 # JPEG 2000 lossy CT
    ("JPEG2000.dcm", None, 2),                 # JPEG 2000 lossy NM
    ("JPGExtended.dcm", None, 2),              # JPEG extended 12-bit lossy
    ("JPEG-lossy.dcm", "JPGExtended.dcm", 2),  # same pixels, damaged SOS header
]

VOLUMES = [
    # input (relative), expected series
    ("dicomdirtests/DICOMDIR", "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"),
    ("dicomdirtests/98892001/CT5N", "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"),
]

SAMPLES = 64


def stored_values(ds, raw):
    """Container values -> stored values (BitsStored mask, sign extension)."""
    bits = int(ds.BitsStored)
    high = int(getattr(ds, "HighBit", bits - 1))
    compressed = ds.file_meta.TransferSyntaxUID.is_compressed
    shift = 0 if compressed else high + 1 - bits
    v = raw.astype(np.int64) & ((1 << int(ds.BitsAllocated)) - 1)
    v = (v >> shift) & ((1 << bits) - 1)
    if int(ds.PixelRepresentation) == 1:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v


def modality_values(ds):
    # pydicom's J2K correction rewrites PixelRepresentation in place while
    # decoding; the header as written is what the loader sees.
    written = ds.PixelRepresentation
    raw = ds.pixel_array
    ds.PixelRepresentation = written
    v = stored_values(ds, raw)
    is_ct = ds.get("Modality", "") == "CT"
    pad = np.zeros(v.shape, dtype=bool)
    if "PixelPaddingValue" in ds:
        pv = int(ds.PixelPaddingValue)
        if int(ds.PixelRepresentation) == 1 and pv >= 32768:
            pv -= 65536
        lim = int(ds.PixelPaddingRangeLimit) if "PixelPaddingRangeLimit" in ds else pv
        lo, hi = min(pv, lim), max(pv, lim)
        pad = (v >= lo) & (v <= hi)
    has_rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds
    if ds.get("PhotometricInterpretation") == "MONOCHROME1" and not has_rescale and not is_ct:
        bits = int(ds.BitsStored)
        v = (-1 - v) if int(ds.PixelRepresentation) == 1 else ((1 << bits) - 1 - v)
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    out = v.astype(np.float64) * slope + intercept
    out[pad] = -1024.0 if is_ct else 0.0
    return out.astype(np.float32).astype(np.float64)


def sample_points(rows, cols, n, seed):
    rng = np.random.default_rng(seed)
    return [[int(r), int(c)] for r, c in zip(rng.integers(0, rows, n), rng.integers(0, cols, n))]


def stats(a):
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean()), "sum": float(a.sum())}


def geometry(ds):
    g = {"rows": int(ds.Rows), "columns": int(ds.Columns)}
    if "ImagePositionPatient" in ds:
        g["position"] = [float(x) for x in ds.ImagePositionPatient]
    if "ImageOrientationPatient" in ds:
        g["orientation"] = [float(x) for x in ds.ImageOrientationPatient]
    if "PixelSpacing" in ds:
        g["pixel_spacing"] = [float(x) for x in ds.PixelSpacing]
    return g


def decoder_name(ds):
    return "pydicom-gdcm" if ds.file_meta.TransferSyntaxUID.is_compressed else "pydicom-numpy"


def file_entry(name, twin, tol):
    ds = pydicom.dcmread(os.path.join(ROOT, name))
    hu = modality_values(ds)
    if hu.ndim == 3:
        hu = hu[0]
    if twin:
        twin_hu = modality_values(pydicom.dcmread(os.path.join(ROOT, twin)))
        diff = np.abs(hu - twin_hu).max()
        if tol == 0 and diff != 0:
            sys.exit(f"{name}: differs from its uncompressed twin {twin} by {diff}")
        if tol and diff > tol:
            sys.exit(f"{name}: differs from {twin} by {diff} > {tol}")
    pts = sample_points(hu.shape[0], hu.shape[1], SAMPLES, seed=len(name))
    e = {
        "file": name,
        "decoder": decoder_name(ds),
        "twin": twin,
        "tolerance": tol,
        "modality": ds.get("Modality", ""),
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        **geometry(ds),
        **stats(hu),
        "samples": [[r, c, float(hu[r, c])] for r, c in pts],
    }
    return e


def volume_entry(rel, series_uid):
    base = os.path.join(ROOT, rel)
    if os.path.basename(rel) == "DICOMDIR":
        dd = pydicom.dcmread(base)
        root = os.path.dirname(base)
        paths = [os.path.join(root, *r.ReferencedFileID) for r in dd.DirectoryRecordSequence
                 if "ReferencedFileID" in r]
    else:
        paths = [os.path.join(dp, f) for dp, _, fs in os.walk(base) for f in fs]
    slices = []
    for p in paths:
        ds = pydicom.dcmread(p)
        if ds.SeriesInstanceUID == series_uid and "LOCALIZER" not in list(ds.get("ImageType", [])):
            slices.append(ds)
    iop = np.array([float(x) for x in slices[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda d: float(np.dot(normal, [float(x) for x in d.ImagePositionPatient])))
    dist = [float(np.dot(normal, [float(x) for x in d.ImagePositionPatient])) for d in slices]
    vol = np.stack([modality_values(d) for d in slices])
    rows, cols = vol.shape[1:]
    ps = [float(x) for x in slices[0].PixelSpacing]
    direction = np.column_stack([iop[:3], iop[3:], normal]).reshape(-1)
    pts = sample_points(rows, cols, SAMPLES, seed=7)
    rng = np.random.default_rng(11)
    zs = rng.integers(0, len(slices), SAMPLES)
    return {
        "input": rel,
        "series_uid": series_uid,
        "shape": [len(slices), int(rows), int(cols)],
        "spacing": [ps[1], ps[0], float(np.median(np.diff(dist)))],
        "origin": [float(x) for x in slices[0].ImagePositionPatient],
        "direction": [float(x) for x in direction],
        **stats(vol),
        "slice_sums": [float(s.sum()) for s in vol],
        "samples": [[int(z), r, c, float(vol[z, r, c])] for z, (r, c) in zip(zs, pts)],
    }


def main():
    handlers = {h.__name__.rsplit(".", 1)[-1]: h.is_available() for h in config.pixel_data_handlers}
    if not handlers.get("gdcm_handler"):
        sys.exit("python3-gdcm is needed to decode the compressed fixtures (apt-get install python3-gdcm)")
    out = {
        "generator": "tests/golden/dicom_expected.py",
        "pydicom": pydicom.__version__,
        "numpy": np.__version__,
        "files": [file_entry(*f) for f in FILES],
        "volumes": [volume_entry(*v) for v in VOLUMES],
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(out['files'])} files, {len(out['volumes'])} volumes")


if __name__ == "__main__":
    main()
