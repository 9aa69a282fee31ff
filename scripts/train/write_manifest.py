"""Writes BUNDLE/manifest.json for the demo bundle: what each part is, what it
was trained on and by which committed scripts, its validation numbers (from
the parts' training_log.json) and every file with its size and SHA-256.

  /usr/bin/python3 scripts/train/write_manifest.py --bundle resources/models --machine "..."
"""
import argparse
import datetime
import hashlib
import json
import math
import os


def finite(v):
    """NaN/inf (a metric without both classes) -> null: manifest.json stays strict JSON."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--version", default=datetime.date.today().isoformat())
    ap.add_argument("--command", default="scripts/train/train_bundle.sh (all stages; then its export stage again "
                                          "with the current candidate detector and the fusion head last by its "
                                          "fusion-cpu stage)",
                    help="how the bundle was made (manifest training.command)")
    args = ap.parse_args()
    logs = {}
    for part in ("vision", "text", "fusion"):
        p = os.path.join(args.bundle, part, "training_log.json")
        if os.path.exists(p):
            with open(p) as f:
                logs[part] = json.load(f)
    keep = lambda d, keys: {k: d[k] for k in keys if k in d}  # noqa: E731
    vision_args = logs.get("vision", {}).get("args", {})
    fusion_args = logs.get("fusion", {}).get("args", {})
    vision_frames = (" (each training patch cut in the scanner's axes or in one of three frames turned 45 degrees "
                     "about z, x or y, drawn at random: export-training-set --patch-frames)"
                     if vision_args.get("frames") else "")
    if not fusion_args.get("export"):
        fusion_source = "the packed sample of scripts/train/pack_gpu_data.py"
    elif fusion_args.get("tokens"):
        fusion_source = ("every candidate of the export (image tokens from Hilum's C++ image branch, "
                         "scripts/train/image_tokens.py), on the CPU")
    else:
        fusion_source = (f"every candidate of the export (image tokens by the PyTorch ResNet in float32), on "
                         f"{'the GPU' if str(fusion_args.get('device', '')).startswith('cuda') else 'the CPU'}")
    if float(fusion_args.get("juxtavascular_weight", 1.0)) != 1.0:
        fusion_source += (f"; the nodule loss of juxtavascular nodules' candidates weighted "
                          f"x{fusion_args['juxtavascular_weight']:g}")
    if fusion_args.get("frames"):
        fusion_source += ("; each candidate shown in one of four frames (the scanner's axes, rz45, rx45, ry45) "
                          "drawn at random, calibrated and validated on the mean of the four")
    slab = float(logs.get("vision", {}).get("patch_slab_mm", 0))
    zoom = float(logs.get("vision", {}).get("patch_zoom_spacing_mm", 0))
    manifest = {
        "name": "hilum-demo",
        "version": args.version,
        "description": "Demo weights of Hilum's three branches, small enough to ship in the repository. "
                       "For trying the software and testing it, not for reading patients' scans.",
        "not_for_clinical_use": True,
        "licence": "Same licence as Hilum. The general text corpus contains docstrings of the Python 3.11 "
                   "standard library (PSF licence).",
        "training": {
            "data": "synthetic only: chest CT phantoms of `hilum phantom` (seeds 1000-1399; patches, labels and "
                    "referral notes written by `hilum export-training-set`, i.e. by the inference pipeline's own "
                    "lung mask, candidate detector and patch extractor), referral notes of seeds 100000-104999, "
                    "and for the general text model Python standard-library docstrings plus synthetic "
                    "findings-to-impression and question-answer documents (scripts/train/text_corpus.py). "
                    "No patient data.",
            "validation_seeds": "1360-1399 (image, fusion, notes) and 104800-104999 (notes): never trained on",
            "held_out_seeds": "900000 and up: never used in training or validation; the evaluation in "
                              "bench/RESULTS.md runs on them",
            "machine": args.machine,
            "command": args.command,
            "scripts": ["scripts/train/train_bundle.sh", "scripts/train/export_data.sh",
                        "scripts/train/merge_exports.py", "scripts/train/pack_gpu_data.py",
                        "scripts/gpu/train_bundle.sh", "scripts/train/train_text.py", "scripts/train/bpe.py",
                        "scripts/train/text_corpus.py", "scripts/train/olmoe.py", "scripts/train/train_vision.py",
                        "scripts/train/train_fusion.py", "scripts/train/fusion_model.py",
                        "scripts/train/install_bundle.sh", "scripts/train/write_manifest.py",
                        "scripts/train/image_tokens.py", "scripts/train/patch_views.py",
                        "scripts/gpu/train_frames.sh", "scripts/gpu/training_job.sh",
                        "scripts/gpu/train_head_apart.sh"],
        },
        "parts": {
            "vision": {"what": "narrow ResNet-152 (torchvision topology, Bottleneck 3-8-36-3, stem width "
                               f"{logs.get('vision', {}).get('width', '?')}) on "
                               + (f"9x64x64 slab patches (each orthogonal plane with the planes {slab:g} mm above "
                                  "and below it along its normal)" if slab > 0
                                  else f"6x64x64 orthogonal-plane patches (each plane at 0.7 mm and at {zoom:g} mm "
                                  "per pixel)" if zoom > 0 else "3x64x64 orthogonal-plane patches")
                               + f"{vision_frames}; fc[0] nodule logit, fc[1] image malignancy logit",
                       **keep(logs.get("vision", {}), ["trained_on", "parameters", "training_patches",
                                                       "training_nodule_patches", "steps", "batch",
                                                       "validation_nodule_auc", "validation_cpm",
                                                       "validation_image_logit_corr", "seconds"])},
            "text": {"what": "OLMoE-architecture Mixture-of-Experts decoder (64 experts, top-8) as the general "
                             "model, plus the medical LoRA adapter (text/adapters/medical) that reads referral notes",
                     **keep(logs.get("text", {}), ["vocab", "base_parameters", "lora_parameters", "training_notes",
                                                   "general_documents", "base_general_validation_loss",
                                                   "base_note_validation_loss", "lora_note_validation_loss",
                                                   "risk_readout_validation_r2", "total_seconds"])},
            "fusion": {"what": "cross-attention of each candidate's image tokens to the note's hidden states; "
                               "nodule and malignancy logits",
                       "trained_on": fusion_source
                                     + ("; beside the image tokens the MLP takes the candidate detector's own "
                                        "measurements of each candidate (" +
                                        ", ".join(logs["fusion"]["config"]["candidate_features"]) +
                                        "; labels.csv of the export, standardised inside the head)"
                                        if logs.get("fusion", {}).get("config", {}).get("candidate_features")
                                        else ""),
                       **keep(logs.get("fusion", {}), ["config", "training_patches", "frames", "note_pool",
                                                       "validation_nodule_auc_with_note",
                                                       "validation_nodule_auc_no_note",
                                                       "validation_malignancy_auc_with_note",
                                                       "validation_malignancy_auc_no_note",
                                                       "validation_cpm_with_note", "validation_cpm_no_note",
                                                       "seconds"])},
        },
    }
    views = os.path.join(args.bundle, "fusion", "patch_views.json")
    if os.path.exists(views):  # written by patch_views.py; hilum analyze reads manifest["inference"]
        with open(views) as f:
            manifest["inference"] = json.load(f)
    if slab > 0:  # the image branch takes slab patches (nine channels): hilum analyze cuts them so
        manifest.setdefault("inference", {})["patch_slab_mm"] = slab
    if zoom > 0:  # six channels: each plane at two spacings
        manifest.setdefault("inference", {})["patch_zoom_spacing_mm"] = zoom
    files = {}
    for root, _, names in os.walk(args.bundle):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, args.bundle)
            if rel == "manifest.json":
                continue
            with open(p, "rb") as f:
                data = f.read()
            files[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["files"] = dict(sorted(files.items()))
    tmp = os.path.join(args.bundle, "manifest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(finite(manifest), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, os.path.join(args.bundle, "manifest.json"))
    total = sum(f["bytes"] for f in files.values())
    print(f"manifest: {len(files)} files, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
