#!/usr/bin/env python3
"""Writes the figures of the documentation from the main job's results, so that none is typed by hand:

  - the claims table of README.md, between <!-- claims:begin --> and <!-- claims:end -->, from
    runs/reproduce/claims.json (the verdicts `sdsgsm reproduce` computes by their stated rules);
  - docs/results.md, the full results.

It reads runs/reproduce/results.json (written by `sdsgsm reproduce`, which `bash scripts/run.sh`
runs) and runs/eval-MODEL.json (`sdsgsm eval --json`). Timings never appear in what it writes.

    python3 scripts/docs_figures.py            # (re)write README.md's claims block and docs/results.md
    python3 scripts/docs_figures.py --check    # exit 1, naming each stale figure, if they differ

Options --results, --evals, --readme and --out-results point it at other files.
"""
import argparse
import difflib
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"

def pct(v):
    return "n/a" if v is None else f"{100 * v:.2f}%"


def f3(v):
    return "n/a" if v is None else f"{v:.3f}"


def f4(v):
    return "n/a" if v is None else f"{v:.4f}"


# --- reading results.json ---------------------------------------------------------------------

def compared_models(res):
    """The models of the comparison (not the defended ones, whose section holds a robust figure)."""
    return [m for m, j in res.get("models", {}).items() if "robust" not in j]


def defended_models(res):
    return [m for m, j in res.get("models", {}).items() if "robust" in j]


def find(rows, regime, group, attack, label_prefix=None):
    """The first row of a regime and group whose attack (config.attack) is `attack`."""
    for r in rows:
        if r.get("regime") != regime or r.get("group") != group:
            continue
        if r.get("config", {}).get("attack") != attack:
            continue
        if label_prefix and not r.get("label", "").startswith(label_prefix):
            continue
        return r
    return None


def scored(row):
    return row["attacked"] if row and "attacked" in row else None


def load_claims(results_path):
    """The claims, as `sdsgsm reproduce` judged them (claims.json beside results.json, written by the
    report module: the one place where the verdicts and their rules are computed)."""
    path = os.path.join(os.path.dirname(results_path), "claims.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"docs_figures: cannot read {path} ({e}); run `bash scripts/run.sh` first")


def claims_table(claims):
    lines = ["| claim | the paper | ours | verdict |", "|---|---|---|---|"]
    for c in claims:
        lines.append("| " + " | ".join([c["claim"], c["paper"], c["ours"] or "n/a", c["verdict"]]) + " |")
    return "\n".join(lines)


def claims_rules(claims):
    return ["The verdicts' rules (`runs/reproduce/claims.json` holds each claim's measured figures):", ""] + \
        [f"- {c['claim']}: {c['rule']}." for c in claims] + [""]


# --- docs/results.md ------------------------------------------------------------------------------

HEAD = ("| group | attack | ASR | l2 | l_inf | SSIM | PSNR (dB) | ASR 8-bit | l2 8-bit | l2 8-bit median "
        "| SSIM 8-bit | iters | passes |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def run_row(r):
    f, q = r["float"], r["rounded_8bit"]
    return (f"| {r['group']} | {r['label']} | {pct(f['asr'])} | {f3(f['l2_mean'])} | {f4(f['linf_max'])} "
            f"| {f4(f['ssim_mean'])} | {f['psnr_mean']:.2f} | {pct(q['asr'])} | {f3(q['l2_mean'])} "
            f"| {f3(q.get('l2_median'))} | {f4(q['ssim_mean'])} | {r['iterations_mean']:.2f} "
            f"| {r.get('passes_mean', 0):.1f} |")


def regime_tables(rows):
    md = []
    for regime, title in (("fixed", "Fixed iterations (every attack runs all its steps)"),
                          ("early_stop", "Early stop (each image stops at its first success)"),
                          ("minimum_norm", "Minimum-norm attacks (unbounded)")):
        sel = [r for r in rows if r.get("regime") == regime]
        if not sel:
            continue
        n = {scored(r) for r in sel}
        md.append(f"#### {title}\n")
        md.append(HEAD)
        md += [run_row(r) for r in sel]
        md.append(f"\nScored images (classified correctly): {', '.join(str(x) for x in sorted(n))}.\n")
    return md


def ablation(rows):
    order = [("tuned", "ifgsm", None, "uniform", "sign"),
             ("SD-SGSM family, tuned", "sd-ifgsm", None, "DDI map", "sign"),
             ("SD-SGSM family, tuned", "sgsm", None, "uniform", "tanh"),
             ("SD-SGSM family, tuned", "sdsgsm", "SD-SGSM (k 16", "DDI map (k 16 s 16)", "tanh"),
             ("SD-SGSM family, tuned", "sdsgsm", "SD-SGSM (k 4", "DDI map (k 4 s 2)", "tanh")]
    md = ["| regime | variant | allocation M | direction | ASR | ASR 8-bit | l2 | l2 8-bit | SSIM |",
          "|---|---|---|---|---:|---:|---:|---:|---:|"]
    any_row = False
    for regime, name in (("fixed", "fixed"), ("early_stop", "early stop")):
        for group, attack, prefix, m, d in order:
            r = find(rows, regime, group, attack, prefix)
            if r is None:
                continue
            any_row = True
            md.append(f"| {name} | {r['label']} | {m} | {d} | {pct(r['float']['asr'])} | "
                      f"{pct(r['rounded_8bit']['asr'])} | {f3(r['float']['l2_mean'])} | "
                      f"{f3(r['rounded_8bit']['l2_mean'])} | {f4(r['float']['ssim_mean'])} |")
    return ["#### Ablation (tuned attacks)\n"] + md + [""] if any_row else []


def min_eps(rows):
    if not rows:
        return []
    md = ["#### Smallest eps per image (bisection; the images of the eps curves)\n",
          "| regime | attack | median eps (x 1/255) | mean eps (x 1/255) | fooled within eps |",
          "|---|---|---:|---:|---:|"]
    for r in rows:
        med = "-" if r.get("median") is None else f"{r['median_255']:.2f}"
        mean = "-" if r.get("mean") is None else f"{r['mean_255']:.2f}"
        regime = "early stop" if r.get("regime") == "early_stop" else r.get("regime", "")
        md.append(f"| {regime} | {r['label']} | {med} | {mean} | {pct(r['fooled_within_eps_max'])} |")
    return md + [""]


def frontier(points):
    if not points:
        return []
    n = points[0].get("images")
    md = [f"#### The saved adversarial: 8-bit l2 against model passes (first {n} images)\n",
          "Each attack at several budgets; passes per image count every model pass (a gradient step is one; "
          "DDI's windows, 8-bit checks and the refinement one each); figures over the images each attack "
          "fools once its adversarial is rounded to 8-bit pixels.\n",
          "| attack | setting | passes / image | 8-bit ASR | median 8-bit l2 | mean 8-bit l2 | median 8-bit SSIM |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for p in points:
        md.append(f"| {p['label']} | {p['setting']} | {p['passes_mean']:.1f} | {100 * p['asr_8bit']:.1f}% "
                  f"({p['fooled_8bit']}/{p['scored']}) | {f3(p['l2_8bit_median'])} | {f3(p['l2_8bit_mean'])} "
                  f"| {f4(p['ssim_8bit_median'])} |")
    return md + [""]


def strength(m, j):
    rows = j.get("rows", [])
    if not rows:
        return []
    md = [f"### {m} (adversarially trained): strength\n",
          f"{rows[0]['images']} images, clean accuracy {pct(rows[0]['clean_accuracy'])}; every attack at the "
          "run's eps, fixed iterations (the SD-SGSM family on its shipped defaults, APGD on its own 100 steps). "
          "Here ASR is not free: it measures strength.\n",
          "| attack | ASR | l2 (fooled) | SSIM (fooled) | ASR 8-bit | passes |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['label']} | {pct(r['float']['asr'])} | {f3(r['float']['l2_mean'])} "
                  f"| {f4(r['float']['ssim_mean'])} | {pct(r['rounded_8bit']['asr'])} | {r.get('passes_mean', 0):.1f} |")
    rb = j.get("robust")
    if rb:
        curve = rb.get("curve", [])
        n = rb["images"]
        if len(curve) > 1:
            # The sequence at the largest radius: only the images robust at the radius before it.
            last, before = curve[-1], curve[-2]
            labels = {s["attack"]: s["label"] for s in rb.get("attacks", [])}
            md += ["", f"Robust accuracy under the ensemble, {n} images, at {last['eps'] * 255:.4g}/255:\n",
                   "| stage | images attacked | fooled | robust accuracy after |", "|---|---:|---:|---:|",
                   f"| (clean) | {n} | {n - rb['clean_correct']} | {pct(rb['clean_accuracy'])} |",
                   f"| (robust at {before['eps'] * 255:.4g}/255) | | | {pct(before['robust_accuracy'])} |"]
            left = before["robust"]
            for a, fooled in last["fooled"].items():
                left -= fooled
                md.append(f"| {labels.get(a, a)} | {last['attacked'][a]} | {fooled} | {pct(left / n if n else None)} |")
        else:
            md += ["", f"Robust accuracy under the ensemble, {n} images:\n",
                   "| stage | images attacked | fooled | robust accuracy after |", "|---|---:|---:|---:|",
                   f"| (clean) | {n} | {n - rb['clean_correct']} | {pct(rb['clean_accuracy'])} |"]
            left = rb["clean_correct"]
            for s in rb.get("attacks", []):
                left -= s["fooled"]
                md.append(f"| {s['label']} | {s['attacked']} | {s['fooled']} | {pct(left / n if n else None)} |")
        warned = [c["check"] for c in rb.get("checks", []) if c.get("warned")]
        ran = [c["check"] for c in rb.get("checks", []) if c.get("ran")]
        md.append(f"\nRobust accuracy: **{pct(rb['robust_accuracy'])}**. Masking checks run: "
                  f"{', '.join(ran) or 'none'}; warned: {', '.join(warned) or 'none'}.")
        if len(curve) > 1:
            names = list(curve[0]["fooled"])
            md += ["", "Robust accuracy against eps (each radius attacks only the images still robust at the one "
                   "before it; an image fooled in a smaller ball is fooled in every larger one):\n",
                   "| eps | robust accuracy | robust images | " + " | ".join(f"fooled by {labels.get(a, a)}" for a in names) + " |",
                   "|---|---:|---:|" + "---:|" * len(names)]
            for p in curve:
                md.append(f"| {p['eps'] * 255:.4g}/255 | {pct(p['robust_accuracy'])} | {p['robust']} | "
                          + " | ".join(str(p["fooled"][a]) for a in names) + " |")
    return md + [""]


def transfer(cells):
    if not cells:
        return []
    pairs = []
    for c in cells:
        if c["source"] != c["target"] and (c["source"], c["target"]) not in pairs:
            pairs.append((c["source"], c["target"]))
    attacks = []
    for c in cells:
        if c["attack"] not in attacks:
            attacks.append(c["attack"])
    by = {(c["attack"], c["source"], c["target"]): c for c in cells}
    md = ["## Transfer between models\n",
          "Each attack's fixed-iteration adversarials, made on one model and given to another; a cell counts the "
          "images the attack fooled on its own model that the other model classifies correctly. Float transfer "
          "ASR, then rounded to 8-bit pixels in brackets. The white-box ASR (a model to itself) is in the tables above.\n",
          "| attack | " + " | ".join(f"{s} → {t}" for s, t in pairs) + " |",
          "|---|" + "---:|" * len(pairs)]
    for a in attacks:
        cells_a = []
        for s, t in pairs:
            c = by.get((a, s, t))
            cells_a.append("" if c is None else f"{100 * c['asr']:.1f}% ({100 * c['asr_8bit']:.1f}%)")
        md.append(f"| {a} | " + " | ".join(cells_a) + " |")
    return md + [""]


def evals_table(evals):
    if not evals:
        return []
    md = ["## Clean accuracy\n", "`sdsgsm eval --json` of each model (`runs/eval-MODEL.json`).\n",
          "| model | images | accuracy |", "|---|---:|---:|"]
    for name, e in evals:
        md.append(f"| {e.get('model', name)} | {e['images']:,} | {pct(e['accuracy'])} |")
    return md + [""]


def results_md(res, evals, claims):
    ao = res.get("attack_options", {})
    eps = ao.get("eps")
    md = ["# Results", "",
          "<!-- Written by scripts/docs_figures.py from runs/reproduce/results.json and runs/eval-*.json: "
          "do not edit by hand; rerun the script after the main job. -->", "",
          "The main job (`bash scripts/run.sh`, which runs `sdsgsm reproduce`) measured everything below; "
          f"eps {eps * 255:.4g}/255 and {ao.get('steps')} iterations for every bounded attack. "
          "ASR is over the images each model classifies correctly; l2, l_inf, SSIM and PSNR are means over the "
          "images an attack fools; \"8-bit\": its adversarials rounded to 8-bit pixels, over the images they "
          "still fool; passes: model passes per image. The words are defined in [attacks.md](attacks.md#glossary) "
          "and the method in [method.md](method.md).", "",
          "## The paper's claims", "", claims_table(claims), ""] + claims_rules(claims)
    md += evals_table(evals)
    md += ["## The comparison", "",
           "Groups: **textbook** (the literature's settings, alpha 2/255), **tuned** (step and decay tuned by "
           "the rule: ASR >= 99.9% float and 8-bit on test images 5000-5999, then the highest SSIM), "
           "**SD-SGSM family, tuned** (the same rule), **shipped defaults** (SD-SGSM as `sdsgsm attack` runs "
           "it), **minimum norm** (unbounded, on their own defaults).", ""]
    for m in compared_models(res):
        j = res["models"][m]
        rows = j.get("rows", [])
        if not rows:
            continue
        md.append(f"### {m} ({rows[0]['images']} images, clean accuracy {pct(rows[0]['clean_accuracy'])})\n")
        md += regime_tables(rows)
        md += ablation(rows)
        md += min_eps(j.get("min_eps", []))
        md += frontier(j.get("frontier", []))
    defended = defended_models(res)
    if defended:
        md += ["## The defended model", ""]
        for m in defended:
            md += strength(m, res["models"][m])
    md += transfer(res.get("transfer", []))
    return "\n".join(md).rstrip("\n") + "\n"


# --- writing and checking --------------------------------------------------------------------------

def readme_with(readme_text, table):
    pat = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pat.search(readme_text):
        raise SystemExit(f"docs_figures: README has no {BEGIN} ... {END} block")
    return pat.sub(lambda _: f"{BEGIN}\n{table}\n{END}", readme_text, count=1)


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def stale_figures(path, old, new):
    """One line per figure that differs: file:line, the row and column, committed -> now."""
    out = []
    old_lines, new_lines = old.splitlines(), new.splitlines()
    header_at = {}
    header = None
    for i, line in enumerate(new_lines):
        if line.startswith("|") and i + 1 < len(new_lines) and re.match(r"^\|[-:| ]+\|$", new_lines[i + 1]):
            header = cells(line)
        elif not line.startswith("|"):
            header = None
        header_at[i] = header
    sm = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            continue
        pairs = list(zip(range(a0, a1), range(b0, b1))) if op == "replace" and a1 - a0 == b1 - b0 else []
        for ai, bi in pairs:
            o, n = old_lines[ai], new_lines[bi]
            if o.startswith("|") and n.startswith("|") and len(cells(o)) == len(cells(n)):
                head = header_at.get(bi) or []
                co, cn = cells(o), cells(n)
                for k, (x, y) in enumerate(zip(co, cn)):
                    if x != y:
                        col = head[k] if k < len(head) else f"column {k + 1}"
                        out.append(f"{path}:{ai + 1}: {cn[0]} / {cn[1] if len(cn) > 1 else ''} / {col}: "
                                   f"committed {x!r}, results give {y!r}")
            else:
                out.append(f"{path}:{ai + 1}: committed {o!r}, results give {n!r}")
        if not pairs:
            for ai in range(a0, a1):
                out.append(f"{path}:{ai + 1}: committed line not in the results: {old_lines[ai]!r}")
            for bi in range(b0, b1):
                out.append(f"{path}: missing line {bi + 1} of the results: {new_lines[bi]!r}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a stale figure")
    ap.add_argument("--results", default=os.path.join(ROOT, "runs", "reproduce", "results.json"))
    ap.add_argument("--evals", default=os.path.join(ROOT, "runs", "eval-*.json"), help="glob of eval JSON files")
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--out-results", default=os.path.join(ROOT, "docs", "results.md"))
    a = ap.parse_args()
    try:
        with open(a.results) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        print(f"docs_figures: cannot read {a.results} ({e}); run `bash scripts/run.sh` first", file=sys.stderr)
        return 2
    evals = []
    order = {m: i for i, m in enumerate(res.get("models", {}))}
    for p in sorted(glob.glob(a.evals)):
        with open(p) as f:
            e = json.load(f)
        evals.append((os.path.basename(p)[len("eval-"):-len(".json")], e))
    evals.sort(key=lambda t: (order.get(t[1].get("model", t[0]), len(order)), t[0]))

    with open(a.readme) as f:
        readme_old = f.read()
    claims = load_claims(a.results)
    readme_new = readme_with(readme_old, claims_table(claims))
    results_new = results_md(res, evals, claims)
    try:
        with open(a.out_results) as f:
            results_old = f.read()
    except OSError:
        results_old = ""

    targets = [(a.readme, readme_old, readme_new), (a.out_results, results_old, results_new)]
    if a.check:
        stale = []
        for path, old, new in targets:
            if old != new:
                rel = os.path.relpath(path, ROOT)
                stale += stale_figures(rel, old, new) or [f"{rel}: differs from what the results give"]
        for s in stale:
            print(f"stale: {s}", file=sys.stderr)
        if stale:
            print(f"docs_figures: {len(stale)} stale figure(s); run `python3 scripts/docs_figures.py` and commit",
                  file=sys.stderr)
            return 1
        print(f"docs_figures: README.md's claims and docs/results.md agree with {os.path.relpath(a.results, ROOT)}")
        return 0
    for path, old, new in targets:
        if old != new:
            with open(path + ".tmp", "w") as f:
                f.write(new)
            os.replace(path + ".tmp", path)
            print(f"docs_figures: wrote {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
