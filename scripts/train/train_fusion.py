"""Trains the demo fusion head on the frozen image and text branches.

Image tokens: the trained ResNet's last-stage map of each packed patch
([N, 4, C] on 64x64 patches). Text states: the final hidden states of the
base model + medical LoRA on "<|note|>\\n" + note + "<|endoftext|>", exactly as
Hilum encodes a study's clinical text. Targets:
  nodule      is_nodule (BCE, nodules weighted 2, negatives 1; then one offset
              on the logit calibrates it for all ~300 candidates of a study,
              fitted with the easy negatives' inverse sampling rates);
  malignancy  for nodules only, the phantom's probability
              p = sigmoid(3 (image_logit + note_logit - 2.5)) (docs/phantom.md).
Each nodule is shown with its own note (50 %), with another patient's note
(30 %; the target then uses that note's note_logit: re-pairing multiplies the
image/text combinations the head learns from) or with no note (20 %; the
target is then the mean of p over all notes, the image-only estimate), so the
head also serves studies without clinical text.
Writes fusion/fusion_head.safetensors and, with --golden, a parity golden for
the C++ bundle test (a few validation patches, a note, the expected logits).

  python3 scripts/train/train_fusion.py --data train-data/gpu --bundle BUNDLE --device cuda
"""
import argparse
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import fusion_model  # noqa: E402
import olmoe  # noqa: E402
import st_io  # noqa: E402
from train_vision import auc, froc_cpm, load_data, make_model, normalise, parse_ranges  # noqa: E402
from image_tokens import planes_for  # noqa: E402

NOTE_PREFIX, NOTE_SUFFIX = "<|note|>\n", "<|endoftext|>"


def load_tokenizer(path):
    with open(path) as f:
        j = json.load(f)
    special = [t["content"] for t in j["added_tokens"]]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in j["model"]["merges"]]
    return bpe.Tokenizer(j["model"]["vocab"], merges, special)


@torch.no_grad()
def image_tokens(resnet, patches_u8, dev, batch=512):
    """The ResNet's last-stage map of each patch as image tokens [N, k, C]."""
    resnet.eval()
    out = []
    for i in range(0, len(patches_u8), batch):
        x = normalise(torch.from_numpy(np.ascontiguousarray(patches_u8[i:i + batch])).to(dev))
        m = resnet
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        h = m.layer4(m.layer3(m.layer2(m.layer1(h))))
        out.append(fusion_model.image_tokens_from_feature_maps(h.float()))
    return torch.cat(out)


@torch.no_grad()
def note_states(text_model, tok, notes, dev, batch=64):
    """Padded [S, T, d] hidden states and the [S, T] mask. Notes run in batches,
    right-padded: with the causal mask a real token never sees the padding after
    it, so its state is the one of the note alone from position 0 (as at inference)."""
    ids = [tok.encode(NOTE_PREFIX + n + NOTE_SUFFIX) for n in notes]
    t_max = max(len(i) for i in ids)
    d = text_model.cfg["hidden_size"]
    pad = text_model.cfg.get("pad_token_id") or 0
    states = torch.zeros(len(ids), t_max, d, device=dev)
    mask = torch.zeros(len(ids), t_max, dtype=torch.bool, device=dev)
    for i in range(0, len(ids), batch):
        chunk = ids[i:i + batch]
        n = max(len(c) for c in chunk)
        x = torch.full((len(chunk), n), pad, dtype=torch.long, device=dev)
        for j, c in enumerate(chunk):
            x[j, :len(c)] = torch.tensor(c, device=dev)
        _, h, _ = text_model(x, use_lora=True)
        for j, c in enumerate(chunk):
            states[i + j, :len(c)] = h[j, :len(c)].float()
            mask[i + j, :len(c)] = True
    return states, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--bundle", required=True, help="folder with vision/ and text/ (fusion/ is written)")
    ap.add_argument("--val-seeds", default="1360-1399")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--golden", default="", help="folder for the C++ parity golden")
    ap.add_argument("--export", default="", help="train on every candidate of this export (labels.csv, patches.npy) ...")
    ap.add_argument("--tokens", default="", help="... with these image tokens (image_tokens.py) instead of --data's patches")
    ap.add_argument("--note-groups", type=int, default=0,
                    help="G > 0: batches of G single-study groups sharing a note choice (fewer text keys/values)")
    ap.add_argument("--pool-notes", type=int, default=-1,
                    help="notes besides the studies' own for re-pairing (-1: all in --data)")
    ap.add_argument("--pos-fraction", type=float, default=0.0,
                    help="share of nodules in each batch (0: as drawn); the nodule bias is calibrated afterwards")
    ap.add_argument("--frames", action="store_true",
                    help="--export made with --patch-frames: tokens of every frame's patches; each training "
                         "candidate is shown in a frame drawn at random, and the calibration and validation use "
                         "the logits averaged over the frames (as hilum analyze averages its views)")
    ap.add_argument("--nodule-weight", type=float, default=2.0, help="BCE weight of nodules (negatives 1)")
    ap.add_argument("--juxtavascular-weight", type=float, default=1.0,
                    help="--export: the nodule BCE weight of juxtavascular nodules' candidates is multiplied by "
                         "this (nodules.csv's juxtavascular column); the head ranks them lowest")
    ap.add_argument("--features", default="",
                    help="comma-separated candidate features the head also takes (fusion_model.CANDIDATE_FEATURES; "
                         "needs --export: the detector's measurements in labels.csv; truth patches are then left out)")
    args = ap.parse_args()
    if args.frames and (args.tokens or not args.export):
        raise SystemExit("--frames needs --export (with its patches_<frame>.npy) and no --tokens")
    if not args.juxtavascular_weight > 0:
        raise SystemExit(f"--juxtavascular-weight {args.juxtavascular_weight}: must be above 0")
    if args.juxtavascular_weight != 1.0 and not args.export:
        raise SystemExit("--juxtavascular-weight needs --export (its nodules.csv says which nodules are juxtavascular)")
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    # Image tokens in float32, as the C++ image branch computes them (no TF32 convolutions).
    torch.backends.cudnn.allow_tf32 = False
    t_start = time.time()

    if args.export:
        # Every candidate of the export (no sampling), image tokens precomputed
        # by the C++ image branch (image_tokens.py): the CPU route.
        patches = np.load(os.path.join(args.export, "patches.npy"), mmap_mode="r")
        with open(os.path.join(args.export, "labels.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        num = lambda k, conv, d: np.array([conv(r[k]) if r[k] != "" else d for r in rows])  # noqa: E731
        lab = {"study": num("study", int, -1), "seed": num("seed", int, -1), "is_nodule": num("is_nodule", int, 0),
               "malignant": num("malignant", int, 0), "image_logit": num("image_logit", float, np.nan),
               "weight": np.ones(len(rows), dtype=np.float32), "nodule": num("nodule", int, -1)}
        nodules_by_seed, juxtavascular = {}, set()
        with open(os.path.join(args.export, "nodules.csv"), newline="") as f:
            for r in csv.DictReader(f):
                nodules_by_seed.setdefault(int(r["seed"]), {})[int(r["nodule"])] = float(r["diameter_mm"])
                if r.get("juxtavascular") == "1":
                    juxtavascular.add((int(r["seed"]), int(r["nodule"])))
        lab["juxtavascular"] = np.array([(s, n) in juxtavascular for s, n in zip(lab["seed"], lab["nodule"])])
    else:
        patches, lab = load_data(args.data)
    feature_names = [f for f in args.features.split(",") if f]
    usable = np.ones(len(lab["seed"]), dtype=bool)
    feats = None
    if feature_names:
        if not args.export:
            raise SystemExit("--features needs --export (the detector's measurements are in its labels.csv)")
        usable = np.array([r["source"] == "detector" for r in rows])  # truth patches have no measurements
        feats = np.zeros((len(rows), len(feature_names)), dtype=np.float32)
        det = [r for r in rows if r["source"] == "detector"]
        try:
            feats[usable] = fusion_model.candidate_feature_matrix(det, feature_names)
        except ValueError as e:
            raise SystemExit(f"{os.path.join(args.export, 'labels.csv')}: {e}")
    notes = []
    with open(os.path.join(args.data, "notes.jsonl")) as f:
        for line in f:
            if line.strip():
                notes.append(json.loads(line))
    if args.pool_notes >= 0:  # the studies' own notes plus the first --pool-notes others (CPU route: fewer to encode)
        own = set(int(x) for x in lab["seed"])
        others = [d for d in notes if d["seed"] not in own][:args.pool_notes]
        notes = [d for d in notes if d["seed"] in own] + others
    seed_to_note = {}
    for i, d in enumerate(notes):
        seed_to_note.setdefault(d["seed"], i)
    val_seeds = parse_ranges(args.val_seeds)
    # The pool for re-pairing: every note whose seed is not a validation seed.
    pool = np.array([i for i, d in enumerate(notes) if d["seed"] not in val_seeds])
    note_logit = torch.tensor([d["note_logit"] for d in notes], dtype=torch.float32, device=dev)

    vision_dir = os.path.join(args.bundle, "vision")
    sd = st_io.load_file(os.path.join(vision_dir, "resnet.safetensors"))
    width, in_channels = sd["conv1.weight"].shape[0], sd["conv1.weight"].shape[1]
    resnet = make_model(width, in_channels)
    resnet.load_state_dict(sd)
    resnet.to(dev)
    # A slab export serves a three-plane net too (its middle planes).
    patches = planes_for(patches, in_channels, args.export or args.data)
    if args.tokens:
        tokens = torch.from_numpy(np.load(args.tokens)).to(dev).float()[None]
        if tokens.shape[1] != len(lab["seed"]):
            raise SystemExit(f"{args.tokens}: {tokens.shape[1]} rows, the export has {len(lab['seed'])}")
    else:
        sources = [patches]
        if args.frames:
            with open(os.path.join(args.export, "manifest.json")) as f:
                extra = json.load(f)["patches"].get("extra_frames", [])
            if not extra:
                raise SystemExit(f"{args.export}: no extra frames (export-training-set --patch-frames)")
            sources += [planes_for(np.load(os.path.join(args.export, f"patches_{fr}.npy"), mmap_mode="r"),
                                   in_channels, args.export) for fr in extra]
        tokens = torch.stack([image_tokens(resnet, p, dev) for p in sources])  # [F, N, k, C]
    n_frames = tokens.shape[0]
    text_dir = os.path.join(args.bundle, "text")
    text_model = olmoe.load_pretrained(text_dir, os.path.join(text_dir, "adapters", "medical")).to(dev).eval()
    for m in text_model.modules():
        if isinstance(m, olmoe.SparseMoe):
            m.dense = dev.type == "cuda"
    tok = load_tokenizer(os.path.join(text_dir, "tokenizer.json"))
    states, smask = note_states(text_model, tok, [d["text"] for d in notes], dev)
    print(f"fusion: image tokens {tuple(tokens.shape)}, note states {tuple(states.shape)} "
          f"({time.time() - t_start:.0f}s)", flush=True)

    study_note = torch.tensor([seed_to_note[int(s)] for s in lab["seed"]], device=dev)
    is_nod = torch.tensor(lab["is_nodule"], dtype=torch.float32, device=dev)
    # Learning weights: balanced (nodules 2, negatives 1); the sampling weights
    # (inverse sampling rate of the easy negatives) calibrate the bias afterwards.
    weight = torch.where(torch.tensor(lab["is_nodule"], device=dev) > 0, args.nodule_weight, 1.0)
    if args.juxtavascular_weight != 1.0:
        jv = torch.tensor(lab["juxtavascular"] & (lab["is_nodule"] > 0), device=dev)
        weight = torch.where(jv, weight * args.juxtavascular_weight, weight)
        print(f"fusion: {int(jv.sum())} juxtavascular nodule candidates weighted x{args.juxtavascular_weight}",
              flush=True)
    sampling_weight = torch.tensor(lab["weight"], dtype=torch.float32, device=dev)
    il = torch.tensor(np.nan_to_num(lab["image_logit"], nan=0.0), dtype=torch.float32, device=dev)
    val = torch.tensor(np.isin(lab["seed"], sorted(val_seeds)), device=dev)
    usable_t = torch.tensor(usable, device=dev)
    feats_t = torch.from_numpy(feats).to(dev) if feats is not None else None
    pool_t = torch.tensor(pool, device=dev)

    def p_mal(il_, nl_):
        return torch.sigmoid(3 * (il_ + nl_ - 2.5))

    # Image-only target: p averaged over the note pool.
    p_marginal = p_mal(il[:, None], note_logit[pool_t][None, :]).mean(1)

    def fe(idx):
        return feats_t[idx] if feats_t is not None else None

    def head_logits(idx, with_note, chunk=4096):
        """Logits of candidates idx with their own note (or none), averaged over
        the frames: one note per study, its keys and values computed once for all
        the study's candidates."""
        out = torch.zeros(len(idx), 2, device=dev)
        for fr in range(n_frames):
            tk = tokens[fr]
            if not with_note:
                for c in range(0, len(idx), chunk):
                    j = idx[c:c + chunk]
                    out[c:c + chunk] += head(tk[j], states[:1, :0], None, None, fe(j))
                continue
            notes_of = study_note[idx]
            for nt in torch.unique(notes_of):
                sel = torch.nonzero(notes_of == nt).squeeze(1)
                j = idx[sel]
                out[sel] += head(tk[j], states[nt][None], smask[nt][None],
                                 torch.zeros(len(j), dtype=torch.long, device=dev), fe(j))
        return out / n_frames

    ic = tokens.shape[3]
    head = fusion_model.FusionHead(image_channels=ic, image_tokens=tokens.shape[2], text_dim=states.shape[2],
                                   dim=args.dim, heads=args.heads, hidden=args.hidden,
                                   candidate_features=feature_names).to(dev)
    train_idx = torch.nonzero(~val & usable_t).squeeze(1)
    if feature_names:  # standardised by the training candidates' statistics
        with torch.no_grad():
            ft = feats_t[train_idx]
            head.feature_mean.copy_(ft.mean(0))
            head.feature_scale.copy_(1.0 / ft.std(0).clamp_min(1e-6))
        print("fusion: candidate features " + ", ".join(
            f"{n} mean {m:.3f} sd {1 / s:.3f}" for n, m, s in
            zip(feature_names, head.feature_mean.tolist(), head.feature_scale.tolist())), flush=True)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-4)
    train_pos = train_idx[is_nod[train_idx] > 0]
    train_neg = train_idx[is_nod[train_idx] == 0]
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)
    # --note-groups G: the batch is G groups of candidates of one study each, and
    # every group shares one note choice, so the text keys/values are computed
    # for G notes per step instead of one per candidate (the CPU route).
    train_studies = torch.unique(torch.tensor(lab["study"], device=dev)[train_idx])
    study_t = torch.tensor(lab["study"], device=dev)
    by_study = {int(st): (train_idx[(study_t[train_idx] == st) & (is_nod[train_idx] > 0)],
                          train_idx[(study_t[train_idx] == st) & (is_nod[train_idx] == 0)])
                for st in train_studies.tolist()} if args.note_groups > 0 else {}
    study_list = sorted(by_study)
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        if args.note_groups > 0:
            G = args.note_groups
            per = args.batch // G
            groups = torch.randint(len(study_list), (G,), device=dev, generator=gen).tolist()
            idx_parts = []
            for gi in groups:
                pos_i, neg_i = by_study[study_list[gi]]
                n_pos = int(per * args.pos_fraction) if len(pos_i) else 0
                parts = []
                if n_pos:
                    parts.append(pos_i[torch.randint(len(pos_i), (n_pos,), device=dev, generator=gen)])
                parts.append(neg_i[torch.randint(len(neg_i), (per - n_pos,), device=dev, generator=gen)])
                idx_parts.append(torch.cat(parts))
            idx = torch.cat(idx_parts)
            gid = torch.arange(G, device=dev).repeat_interleave(per)
            r_g = torch.rand(G, device=dev, generator=gen)
            other_g = pool_t[torch.randint(len(pool_t), (G,), device=dev, generator=gen)]
            own_g = study_note[torch.stack([p[0] for p in idx_parts])]
            note_g = torch.where(r_g < 0.5, own_g, other_g)
            no_text_g = r_g >= 0.8
            mask_g = smask[note_g] & ~no_text_g[:, None]
            batch = (idx, states[note_g], mask_g, gid, note_g[gid], no_text_g[gid])
        else:
            if args.pos_fraction > 0:  # nodules over-sampled; the calibration below undoes the shift
                n_pos = int(args.batch * args.pos_fraction)
                idx = torch.cat([train_pos[torch.randint(len(train_pos), (n_pos,), device=dev, generator=gen)],
                                 train_neg[torch.randint(len(train_neg), (args.batch - n_pos,), device=dev,
                                                         generator=gen)]])
            else:
                idx = train_idx[torch.randint(len(train_idx), (args.batch,), device=dev, generator=gen)]
            r = torch.rand(args.batch, device=dev, generator=gen)
            other = pool_t[torch.randint(len(pool_t), (args.batch,), device=dev, generator=gen)]
            note = torch.where(r < 0.5, study_note[idx], other)
            no_text = r >= 0.8
            mask = smask[note] & ~no_text[:, None]
            batch = (idx, states[note], mask, torch.arange(args.batch, device=dev), note, no_text)
        idx, text, mask, study_index, note, no_text = batch
        # One frame per candidate, drawn at random (the scanner's axes alone without --frames).
        fr = torch.randint(n_frames, (len(idx),), device=dev, generator=gen) if n_frames > 1 else 0
        logits = head(tokens[fr, idx], text, mask, study_index, fe(idx))
        target_m = torch.where(no_text, p_marginal[idx], p_mal(il[idx], note_logit[note]))
        w = weight[idx]
        l_nod = (F.binary_cross_entropy_with_logits(logits[:, 0], is_nod[idx], reduction="none") * w).sum() / w.sum()
        pos = is_nod[idx] > 0
        l_mal = F.binary_cross_entropy_with_logits(logits[pos, 1], target_m[pos]) if pos.any() else logits.sum() * 0
        loss = l_nod + l_mal
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"  step {step} nodule {l_nod.item():.4f} malignancy {l_mal.item():.4f} "
                  f"({time.time() - t_start:.0f}s)", flush=True)

    head.eval()
    # Calibration of the nodule probability for a whole study's candidates: one
    # offset on the nodule logit, fitted by Newton's method on the training
    # patches with their sampling weights (each easy negative stands for the
    # ~36 others of its study), half with the own note, half without.
    with torch.no_grad():
        ti = train_idx
        ln = head_logits(ti, True)[:, 0]
        l0 = head_logits(ti, False)[:, 0]
        z = torch.cat([ln, l0]).double()
        y = torch.cat([is_nod[ti], is_nod[ti]]).double()
        sw = torch.cat([sampling_weight[ti], sampling_weight[ti]]).double()
        b = torch.zeros((), dtype=torch.float64, device=dev)
        for _ in range(50):
            p = torch.sigmoid(z + b)
            g = (sw * (p - y)).sum()
            h = (sw * p * (1 - p)).sum()
            b = b - g / h
        head.head[2].bias[0] += b.float()
    print(f"fusion: nodule logit calibrated by {float(b):+.3f}", flush=True)
    vi = torch.nonzero(val & usable_t).squeeze(1)
    with torch.no_grad():
        own = head_logits(vi, True)
        none = head_logits(vi, False)
    y_nod = lab["is_nodule"][vi.cpu().numpy()]
    y_mal = lab["malignant"][vi.cpu().numpy()]
    pos = y_nod > 0
    metrics = {
        "validation_nodule_auc_with_note": round(auc(own[:, 0].cpu().numpy(), y_nod), 4),
        "validation_nodule_auc_no_note": round(auc(none[:, 0].cpu().numpy(), y_nod), 4),
        "validation_malignancy_auc_with_note": round(auc(own[pos.nonzero()[0], 1].cpu().numpy(), y_mal[pos]), 4),
        "validation_malignancy_auc_no_note": round(auc(none[pos.nonzero()[0], 1].cpu().numpy(), y_mal[pos]), 4),
        "validation_nodule_patches": int(pos.sum()),
    }
    if args.export:  # detection on the validation studies' candidates, by the LUNA16 rule
        vn = vi.cpu().numpy()
        det = np.array([rows[i]["source"] == "detector" for i in vn])
        for key, lg in (("with_note", own), ("no_note", none)):
            cpm, sens = froc_cpm(lg[:, 0].cpu().numpy()[det], lab["seed"][vn][det], lab["nodule"][vn][det],
                                 lab["is_nodule"][vn][det], nodules_by_seed)
            metrics[f"validation_cpm_{key}"] = round(cpm, 4)
            metrics[f"validation_sensitivity_{key}"] = [round(x, 4) for x in sens]
    print(f"fusion: {metrics}", flush=True)
    out_dir = os.path.join(args.bundle, "fusion")
    os.makedirs(out_dir, exist_ok=True)
    fusion_model.save_fusion_head(head.cpu(), os.path.join(out_dir, "fusion_head.safetensors"))
    with open(os.path.join(out_dir, "training_log.json"), "w") as f:
        json.dump({"config": head.config, "nodule_logit_calibration": round(float(b), 4), "training_patches": int(len(train_idx)), "frames": int(n_frames), "note_pool": int(len(pool)),
                   **metrics, "seconds": round(time.time() - t_start), "args": vars(args)}, f, indent=2)

    if args.golden:
        # Parity golden: the first validation nodule patches and a few others, one note, float64 on the CPU.
        os.makedirs(args.golden, exist_ok=True)
        vnp = vi.cpu().numpy()
        pick = list(vnp[pos][:4]) + list(vnp[~pos][:4])
        seed = int(lab["seed"][pick[0]])
        note = notes[seed_to_note[seed]]["text"]
        cpu = torch.device("cpu")
        resnet64 = resnet.cpu().double().eval()
        text64 = text_model.cpu().double().eval()
        for m in text64.modules():
            if isinstance(m, olmoe.SparseMoe):
                m.dense = False
        head64 = head.cpu().double().eval()
        with torch.no_grad():
            x = normalise(torch.from_numpy(patches[pick].copy())).double()
            m = resnet64
            h = m.layer4(m.layer3(m.layer2(m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x))))))))
            tk = fusion_model.image_tokens_from_feature_maps(h)
            ids = tok.encode(NOTE_PREFIX + note + NOTE_SUFFIX)
            _, hs, _ = text64(torch.tensor([ids], device=cpu), use_lora=True)
            fp = torch.from_numpy(feats[pick]).double() if feats is not None else None
            with_note = head64(tk, hs[0], features=fp)
            no_note = head64(tk, hs[0][:0], features=fp)
        np.save(os.path.join(args.golden, "patches.npy"), patches[pick])
        with open(os.path.join(args.golden, "note.txt"), "w") as f:
            f.write(note)
        np.save(os.path.join(args.golden, "logits_with_note.npy"), with_note.float().numpy())
        np.save(os.path.join(args.golden, "logits_no_note.npy"), no_note.float().numpy())
        np.save(os.path.join(args.golden, "note_ids.npy"), np.array(ids, dtype=np.int32))
        if feats is not None:  # raw feature values of the picked candidates, as the C++ side gets them
            np.save(os.path.join(args.golden, "features.npy"), feats[pick])
        print(f"golden: {len(pick)} patches, note of seed {seed} ({len(ids)} tokens) -> {args.golden}")


if __name__ == "__main__":
    main()
