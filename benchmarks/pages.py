"""The results pages of docs/, each rendered from its data file and nothing else.

``docs/<page>.md`` is its template ``docs/data/<page>.template.md`` with every line ``{{section}}``
replaced by that section of ``docs/data/<page>.json`` as Markdown. A section holds what ran
(``command``), where (``machine``: the CPU model and its cores), the measured numbers (per run or per
seed where they were kept) and the published numbers they stand beside. A benchmark that finishes
its runs records its section (:func:`record`), which renders the page again; ``--render`` on a
benchmark renders its page from the committed data alone, and tests/test_docs.py checks that the
committed pages are what their data renders to.

Numbers are formatted here, never stored formatted: a data file keeps what was measured, at the
precision it was recorded with, so that a page and its data cannot disagree.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shlex
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ppo.rundir import write_json

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DATA = DOCS / "data"
PLACEHOLDER = re.compile(r"^\{\{(\w+)\}\}$", re.MULTILINE)


# ---------------------------------------------------------------------------------------------------
# MACHINE, COMMAND, DATA FILES
# ---------------------------------------------------------------------------------------------------

def machine() -> dict:
    """The CPU model and the cores of this machine, and the torch a run used, as a section records them."""
    cpu = platform.processor() or platform.machine()
    try:
        model_names = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = model_names[0].split(":", 1)[1].strip() if model_names else cpu
    except OSError:  # not Linux
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": importlib.metadata.version("torch")}


def command(module: str, argv: list[str]) -> str:
    """The command line that ran ``python -m <module> <argv>``, quoted to paste into a shell."""
    return shlex.join(["python", "-m", module, *argv])


def load(page: str) -> dict:
    """The page's data: its sections by name."""
    return json.loads((DATA / f"{page}.json").read_text())


def record(page: str, section: str, value: dict) -> str:
    """Store ``value`` as ``section`` of the page's data file, render the page again, and return the
    section as Markdown."""
    data = load(page)
    data[section] = value
    write_json(DATA / f"{page}.json", data)
    write_page(page)
    return PAGES[page][section](data)


def render(page: str, data: dict, template: str) -> str:
    """The page: ``template`` with each ``{{section}}`` line rendered from ``data``. Every section of the
    data must be placed in the template, and every placeholder must have its data."""
    renderers = PAGES[page]
    placed = PLACEHOLDER.findall(template)
    if sorted(placed) != sorted(renderers) or set(data) != set(renderers):
        raise ValueError(f"{page}: the template places {sorted(placed)}, the data has {sorted(data)}, "
                         f"and the page renders {sorted(renderers)}; they must be the same sections, each once")
    body = PLACEHOLDER.sub(lambda match: renderers[match[1]](data).rstrip("\n"), template)
    return f"<!-- Rendered by {RENDER_COMMANDS[page]} from docs/data/{page}.json and " \
           f"docs/data/{page}.template.md: edit those, not this file. -->\n\n{body}"


def write_page(page: str, docs: Path | None = None) -> Path:
    """Render ``docs/<page>.md`` (or ``<docs>/<page>.md``) from the page's data file and template."""
    path = (docs or DOCS) / f"{page}.md"
    path.write_text(render(page, load(page), (DATA / f"{page}.template.md").read_text()))
    return path


# ---------------------------------------------------------------------------------------------------
# SHARED PIECES
# ---------------------------------------------------------------------------------------------------

def provenance(section: dict) -> str:
    """The command that reruns a section, then the machine it ran on (and how long it took, where known)."""
    took = f"; {section['minutes']:g} minutes" if "minutes" in section else ""
    return f"```bash\n{section['command']}\n```\n\nMachine: {machine_text(section['machine'])}{took}."


def machine_text(where: dict) -> str:
    return f"{where['cpu']}, {where['cores']} cores" + (f", torch {where['torch']}" if "torch" in where else "")


def number(value: float | None, spec: str = ",.0f", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


def mean_std(mean: float, std: float, spec: str) -> str:
    return f"{mean:{spec}} ± {std:{spec}}"


def listing(values: list, spec: str = ",") -> str:
    """``1, 2 and 3``."""
    texts = [format(value, spec) for value in values]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} and {texts[-1]}"


def other_commands(section: dict, label: str) -> str:
    """A line per row that ran with a command of its own (a rerun of some envs), with its machine where
    that differs from the section's; else nothing."""
    lines = []
    for row in section["rows"]:
        if "command" in row:
            where = row.get("machine", section["machine"])
            elsewhere = f" ({machine_text(where)})" if where != section["machine"] else ""
            lines.append(f"The {row[label]} row: `{row['command']}`{elsewhere}.")
    return "\n\n" + "\n".join(lines) if lines else ""


# ---------------------------------------------------------------------------------------------------
# CLASSIC CONTROL AND MUJOCO (benchmarks.suite)
# ---------------------------------------------------------------------------------------------------

def suite_table(rows: list[dict]) -> list[str]:
    """The classic suite's table: per env, our final greedy score over seeds and over all evaluation
    episodes pooled, the seeds that reach the solved score, the best training mean, RL Zoo's score."""
    lines = [
        "| env | budget (steps) | ours: final score, mean ± std over seeds | ours: all eval episodes | "
        "seeds with final score ≥ solved score | best 100-ep training mean | train s per run | RL Zoo PPO (1 seed) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        solved = "—" if r["solved_score"] is None else f"{r['seeds_solved']}/{r['seeds']} (≥ {r['solved_score']:g})"
        best_mean = number(r["best_mean_100"], ".1f", missing="— (< 100 episodes)")
        lines.append(
            f"| {r['env_id']} | {r['budget']:,} | {r['score_mean']:.1f} ± {r['score_std_over_seeds']:.1f} "
            f"({r['seeds']} seed{'s' if r['seeds'] > 1 else ''}) "
            f"| {r['score_mean']:.1f} ± {r['score_std_pooled']:.1f} ({r['seeds'] * r['eval_episodes']} episodes) "
            f"| {solved} | {best_mean} "
            f"| {r['train_seconds']:.0f} | {r['rl_zoo_mean']:.1f} ± {r['rl_zoo_std']:.1f} "
            f"({r['rl_zoo_env']}, {r['rl_zoo_budget']:,} steps) |")
    return lines


def classic_suite(data: dict) -> str:
    section = data["suite"]
    return "\n".join([provenance(section), "", *suite_table(section["rows"]), "",
                      f"RL Zoo's scores: {section['rl_zoo_source']}."]) + other_commands(section, "env_id")


def mujoco_suite(data: dict) -> str:
    section = data["suite"]
    lines = ["| env | budget (steps) | ours: final score, mean ± std over seeds | per seed "
             "| best 100-ep training mean | RL Zoo PPO (1 seed) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in section["rows"]:
        lines.append(f"| {r['env_id']} | {r['budget']:,} | {_score(r, per_seed=False)} "
                     f"| {listing(r['seed_scores'], ',.0f')} | {number(r['best_mean_100'])} "
                     f"| {mean_std(r['rl_zoo_mean'], r['rl_zoo_std'], ',.0f')} ({r['rl_zoo_env']}) |")
    return "\n".join([provenance(section), "", *lines, "", f"RL Zoo's scores: {section['rl_zoo_source']}."]) \
        + other_commands(section, "env_id")


def _score(row: dict, per_seed: bool = True) -> str:
    """``mean ± std`` over seeds, then each seed's score where the row keeps them (and ``per_seed``)."""
    text = "—" if row["score_mean"] is None else mean_std(row["score_mean"], row["score_std_over_seeds"], ",.0f")
    return text + (f" ({listing(row['seed_scores'], ',.0f')})" if per_seed and "seed_scores" in row else "")


def per_network(data: dict) -> str:
    section = data["per_network"]
    together = {row["env_id"]: row for row in data["suite"]["rows"]}
    lines = ["| env | each network clipped on its own | both together (the presets) |", "| --- | --- | --- |"]
    lines += [f"| {r['env_id']} | {_score(r)} | {_score(together[r['env_id']])} |" for r in section["rows"]]
    return "\n".join([provenance(section), "", *lines])


def _seed_scores(runs: list[dict]) -> str:
    """Each run's final score (± its std over episodes, where kept), named by its seed."""
    return ", ".join(number(run["final_score"]) + (f" ± {run['final_score_std']:,.0f}" if "final_score_std" in run
                                                   else "") + f" (seed {run['seed']})" for run in runs)


def sb3_v5(data: dict) -> str:
    section = data["sb3_v5"]
    ours = {row["env_id"]: row for row in data["suite"]["rows"]}
    lines = ["| env | SB3: final score per seed | SB3: mean ± std over seeds | SB3: last 100-ep training mean "
             "| ours |", "| --- | --- | --- | --- | --- |"]
    for r in section["rows"]:
        training = ", ".join(f"{run['last_mean_score_100']:,.0f} (seed {run['seed']})" for run in r["runs"]
                             if "last_mean_score_100" in run) or "—"
        lines.append(f"| {r['env_id']} | {_seed_scores(r['runs'])} | {_score(r, per_seed=False)} | {training} "
                     f"| {_score(ours[r['env_id']], per_seed=False)} |")
    return "\n".join([provenance(section), "", *lines])


def ant_v3_task(data: dict) -> str:
    section = data["ant_v3_task"]
    rl_zoo = next(row for row in data["suite"]["rows"] if row["env_id"] == "Ant-v5")
    standing = section["zero_torques"]
    return "\n".join([
        provenance(section), "",
        f"Final scores over seeds {listing(section['seeds'], 'd')}: {listing(section['seed_scores'], ',.0f')}, so "
        f"{mean_std(section['score_mean'], section['score_std_over_seeds'], ',.0f')}; RL Zoo's Ant-v3: "
        f"{mean_std(rl_zoo['rl_zoo_mean'], rl_zoo['rl_zoo_std'], ',.0f')}. With zero torques the ant stands for "
        f"{standing['steps']:,} steps and scores {standing['Ant-v5']:,.0f} on Ant-v5 and {standing['v3_task']:,.0f} "
        f"on this task ({standing['episodes']} episode, seed {standing['seed']}).",
    ])


def ant_ablation(data: dict) -> str:
    section = data["ant_ablation"]
    lines = ["| Ant-v5, seed 1 | final score | best 100-ep training mean |", "| --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['final_score']:,.0f} | {r['best_mean_100']:,.0f} |" for r in section["rows"]]
    return "\n".join([provenance(section), "", *lines])


def cleanrl_settings(data: dict) -> str:
    section = data["cleanrl_settings"]
    rl_zoo = {row["env_id"]: row for row in data["suite"]["rows"]}
    lines = ["| env | ours, `experiment=mujoco_cleanrl`: final score per seed | mean ± std | the same, each network "
             "clipped on its own | CleanRL (v4, 1M steps) | RL Zoo (v3) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in section["rows"]:
        zoo = rl_zoo[r["env_id"]]
        lines.append(f"| {r['env_id']} | {listing(r['seed_scores'], ',.0f')} | {_score(r, per_seed=False)} "
                     f"| {_score(r['per_network'])} | {mean_std(*r['cleanrl'], ',.0f')} "
                     f"| {mean_std(zoo['rl_zoo_mean'], zoo['rl_zoo_std'], ',.0f')} |")
    times = [f"A {r['env_id']} run trains in {r['train_seconds_range'][0]} to {r['train_seconds_range'][1]} s "
             f"(about {r['steps_per_second']:,} steps/s)." for r in section["rows"] if "train_seconds_range" in r]
    return "\n".join([provenance(section), "", *lines, "", f"CleanRL: {section['cleanrl_source']}.", *times])


# ---------------------------------------------------------------------------------------------------
# ATARI AND MINATAR (benchmarks.atari, benchmarks.minatar)
# ---------------------------------------------------------------------------------------------------

def minatar_table(rows: list[dict]) -> list[str]:
    lines = ["| game (`env.id`) | steps | final greedy score, mean ± std over seeds | per seed | random policy "
             "| training steps/s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        score = mean_std(r["score_mean"], r["score_std"], ".1f") if r["score_mean"] is not None else "no evaluation"
        lines.append(f"| {r['env_id']} | {r['budget']:,} | {score} | {listing(r['seed_scores'], '.1f')} "
                     f"| {r['random_score']:g} | {r['steps_per_second']:,.0f} |")
    return lines


def minatar(data: dict) -> str:
    section = data["minatar"]
    return "\n".join([provenance(section), "", *minatar_table(section["rows"]), "",
                      f"Random policy: {section['random_source']}."])


def gymnax_blines(data: dict) -> str:
    reference = data["gymnax_blines"]
    ours = {row["game"]: row for row in data["minatar"]["rows"]}
    steps = " | ".join(f"at {step / 1e6:g}M" if step >= 1e6 else f"at {step // 1000:,}k" for step in reference["steps"])
    lines = [f"| game | ours (greedy) | ours: steps | gymnax-blines {steps} |",
             "| --- " * (3 + len(reference["steps"])) + "|"]
    for game, scores in reference["scores"].items():
        row = ours[game]
        theirs = " | ".join(f"{score:.1f}" for score in scores)
        lines.append(f"| {row['env_id']} | {mean_std(row['score_mean'], row['score_std'], '.1f')} | {row['budget']:,} "
                     f"| {theirs} |")
    return "\n".join([*lines, "", f"gymnax-blines: {reference['source']}."])


def atari_table(section: dict) -> list[str]:
    """Per run: our 100-episode mean training score at the report steps beside CleanRL's curve there,
    the final greedy score, CleanRL's 10M-step score, steps/s."""
    cleanrl = section["cleanrl"]
    header = " | ".join(f"at {step / 1e6:g}M: ours / CleanRL" for step in section["report_steps"])
    lines = [f"| game | seed | {header} | final greedy score (episodes) | CleanRL at 10M | steps/s |",
             "| --- " * (5 + len(section["report_steps"])) + "|"]
    for r in section["runs"]:
        cells = [f"{number(ours, '.1f')} / {cleanrl['curve'][r['game']][str(step)]:.1f}"
                 for step, ours in zip(section["report_steps"], r["scores_at"])]
        if r["final_score"] is not None:
            final = f"{r['final_score']:.1f} ± {r['final_score_std']:.1f} ({r['eval_episodes']})"
        else:
            final = f"unfinished ({r['env_steps']:,} steps)" if r["steps_per_second"] is None else "no evaluation"
        lines.append(f"| {r['env_id']} | {r['seed']} | {' | '.join(cells)} | {final} "
                     f"| {mean_std(*cleanrl['score_10m'][r['game']], '.1f')} | {number(r['steps_per_second'])} |")
    return lines


def atari(data: dict) -> str:
    section = data["atari"]
    finished = [r for r in section["runs"] if r["train_seconds"] is not None]
    notes = []
    if finished:
        notes.append("Training took " + listing([f"{r['train_seconds']:,.0f} s ({r['env_id']})" for r in finished], "s")
                     + ".")
    notes += [f"Peak RSS of the {r['env_id']} run (`VmHWM` of the process, read every 20 s): {r['peak_rss_mb']} MB."
              for r in section["runs"] if "peak_rss_mb" in r]
    return "\n".join([provenance(section), "", *atari_table(section), "", f"CleanRL: {section['cleanrl']['source']}.",
                      "", " ".join(notes)])


# ---------------------------------------------------------------------------------------------------
# PERFORMANCE (benchmarks.benchmark, benchmarks.mujoco_wall_time, benchmarks.atari_envs)
# ---------------------------------------------------------------------------------------------------

def runs_table(section: dict) -> str:
    """Runs of ``benchmarks.benchmark``: until solved (steps, seconds, speed, memory, and their medians),
    or over a whole budget (where each solved, how far it went, its best scores)."""
    runs = section["runs"]
    if section["solve_only"]:
        lines = ["| seed | steps to solve | seconds to solve | steps/s | peak RSS MB |",
                 "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['seed']} | {number(r['steps_to_solve'], ',', 'not solved')} "
                  f"| {number(r['seconds_to_solve'], '.1f', 'not solved')} | {r['steps_per_second']:,.0f} "
                  f"| {r['peak_rss_mb']:.0f} |" for r in runs]
        solved = [r for r in runs if r["steps_to_solve"] is not None]
        steps, seconds = ((f"{statistics.median(r['steps_to_solve'] for r in solved):,.0f}",
                           f"{statistics.median(r['seconds_to_solve'] for r in solved):.1f}")
                          if len(solved) == len(runs) else (f"{len(solved)}/{len(runs)} solved", ""))
        lines.append(f"| median | {steps} | {seconds} | {statistics.median(r['steps_per_second'] for r in runs):,.0f} "
                     f"| {statistics.median(r['peak_rss_mb'] for r in runs):.0f} |")
    else:
        lines = ["| seed | solved at | env steps | best score | best 100-episode mean |",
                 "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['seed']} | {number(r['steps_to_solve'], ',', 'not solved')}"
                  f"{' steps' if r['steps_to_solve'] is not None else ''} | {r['global_step']:,} "
                  f"| {r['best_score']:.0f} | {number(r['best_mean_score_100'], '.1f')} |" for r in runs]
    return "\n".join([provenance(section), "", *lines])


def default_preset(data: dict) -> str:
    return runs_table(data["default_preset"])


def tutorial_300_games(data: dict) -> str:
    return runs_table(data["tutorial_300_games"])


def default_preset_more_seeds(data: dict) -> str:
    section = data["default_preset_more_seeds"]
    seconds = section["seconds_to_solve"]
    first = [r["steps_to_solve"] for r in data["default_preset"]["runs"]]
    return (f"Seeds {section['seeds'][0]} to {section['seeds'][-1]} (`{section['command']}`) solve at "
            f"{listing(section['steps_to_solve'])} steps, in {seconds['min']:.1f} to {seconds['max']:.1f} s "
            f"(median {seconds['median']:.1f} s); over these and the seeds above the median is "
            f"{statistics.median(first + section['steps_to_solve']):,.0f} steps.")


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _ratios(ratio: dict) -> str:
    return f"{_ratio(ratio['auto'])} ({_ratio(ratio['warm'])}; {_ratio(ratio['cold'])})"


def _seconds_or_rate(value: float | None) -> str:
    return "not all solved" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def compare(data: dict) -> str:
    section = data["compare"]
    repeats = section["repeats"]
    header = "| measure | ours (auto) | ours compiled, warm | ours compiled, cold | peer | ratio: auto (warm; cold) |"
    lines = [header + " another run of the command |" * len(repeats), "| --- " * (6 + len(repeats)) + "|"]
    for i, r in enumerate(section["rows"]):
        again = []
        for repeat in repeats:
            other = repeat[i]
            times = (f" ({_seconds_or_rate(other['auto'])} against {_seconds_or_rate(other['peer'])})"
                     if "auto" in other else "")
            again.append(f" {_ratios(other['ratio'])}{times} |")
        lines.append(f"| {r['measure']} | {_seconds_or_rate(r['auto'])} | {_seconds_or_rate(r['warm'])} "
                     f"| {_seconds_or_rate(r['cold'])} | {_seconds_or_rate(r['peer'])} | {_ratios(r['ratio'])} |"
                     + "".join(again))
    phases = ["| run | env steps | acting, storage | values, GAE | update: forward / backward / optimizer "
              "| logging | all |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in section["rows"]:
        p = r["phase_seconds"]
        phases.append(f"| {r['label']} | {p['env_step']:.2f} | {p['acting_and_storage']:.2f} | {p['advantages']:.2f} "
                      f"| {p['update_forward']:.2f} / {p['update_backward']:.2f} / {p['update_optimizer']:.2f} "
                      f"| {p['log']:.2f} | {p['train_seconds']:.1f} |")
    return "\n".join([
        provenance(section), "", *lines, "",
        f"The tutorial's code: {section['tutorial_code_source']}.", "",
        "Where ours spends its time, in seconds (`phase_seconds` in `metrics.json` of the `auto` run of the first "
        "seed; all: the run's training seconds):", "", *phases,
    ])


def _crossover(steps: float | None) -> str:
    return "never (no saving)" if steps is None else f"{steps:,.0f}"


def crossover(data: dict) -> str:
    section = data["crossover"]
    repeats = section["repeats"]
    lines = ["| setting | compile s, cold / warm | ms per minibatch step, eager / compiled (cold; warm process) "
             "| crossover in minibatch steps, cold / warm |" + " another run: crossover, cold / warm |" * len(repeats),
             "| --- " * (4 + len(repeats)) + "|"]
    for i, r in enumerate(section["rows"]):
        cold, warm = r["cold"], r["warm"]
        again = "".join(f" {_crossover(repeat[i][0])} / {_crossover(repeat[i][1])} |" for repeat in repeats)
        lines.append(f"| {r['setting']} | {cold['compile_seconds']:.0f} / {warm['compile_seconds']:.0f} "
                     f"| {cold['eager_ms']:.2f} / {cold['compiled_ms']:.2f}; {warm['eager_ms']:.2f} / "
                     f"{warm['compiled_ms']:.2f} | {_crossover(cold['crossover'])} / {_crossover(warm['crossover'])} |"
                     + again)
    return "\n".join([provenance(section), "", *lines])


def compile_learning(data: dict) -> str:
    section = data["compile_learning"]
    eager, compiled = section["eager_steps_to_solve"], section["compiled_steps_to_solve"]
    return "\n".join([
        provenance(section), "",
        f"Seeds {section['seeds'][0]} to {section['seeds'][-1]} solve at {listing(eager)} env steps eager (median "
        f"{statistics.median(eager):,.0f}), and at {listing(compiled)} compiled (median "
        f"{statistics.median(compiled):,.0f}); a Mann–Whitney U test finds no difference (p = "
        f"{section['mann_whitney_p']:.2f}). Seed 1 compiled, run {len(section['seed_1_compiled_repeats'])} times, "
        f"solved at {listing(section['seed_1_compiled_repeats'])} steps.",
    ])


def mujoco_wall_time(data: dict) -> str:
    section = data["mujoco_wall_time"]
    lines = ["| round | ours: env steps, seconds, steps/s | SB3: env steps, seconds, steps/s | ours / SB3 |",
             "| --- | --- | --- | --- |"]
    for i, r in enumerate(section["rounds"], 1):
        ours, sb3 = r["ours"], r["sb3"]
        lines.append(f"| {i} | {ours['global_step']:,}, {ours['train_seconds']:.0f} s, {ours['steps_per_second']:,.0f} "
                     f"| {sb3['global_step']:,}, {sb3['train_seconds']:.0f} s, {sb3['steps_per_second']:,.0f} "
                     f"| {ours['steps_per_second'] / sb3['steps_per_second']:.2f}x |")
    return "\n".join([provenance(section), "", *lines])


def half_cheetah_profile(data: dict) -> str:
    p = data["half_cheetah_profile"]
    update = p["update_forward"] + p["update_backward"] + p["update_optimizer"]
    return (f"In {p['run']} ({p['total_timesteps']:,} steps in {p['train_seconds']:,} s, {p['steps_per_second']:,} "
            f"steps/s; `phase_seconds` in its `metrics.json`), the update took {update:,} s (forward "
            f"{p['update_forward']}, backward {p['update_backward']}, optimizer {p['update_optimizer']}) and "
            f"collection {p['collect']}, of which MuJoCo's steps {p['env_step']}.")


def atari_envs(data: dict) -> str:
    section = data["atari_envs"]
    lines = ["| run | ale-py's C++ vector env, steps/s | gymnasium's wrappers in a SyncVectorEnv, steps/s | ratio |",
             "| --- | --- | --- | --- |"]
    lines += [f"| {i} | {r['vector']:,.0f} | {r['sync']:,.0f} | {r['vector'] / r['sync']:.1f}x |"
              for i, r in enumerate(section["runs"], 1)]
    return "\n".join([provenance(section), "",
                      f"Random actions, {section['num_envs']} envs of {section['env_id']}, {section['seconds']:g} s "
                      "each:", "", *lines])


def precision_speed(data: dict) -> str:
    section = data["precision_speed"]
    lines = ["| setting | env steps | device.precision | chosen | steps/s per round | peak RSS, MB |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {section['steps'][r['setting']]:,} | {r['precision']} | {r['chosen']} "
              f"| {listing(r['steps_per_second'])} | {max(r['peak_rss_mb']):,} |" for r in section["rows"]]
    sb3 = section.get("sb3_atari")
    if sb3:
        ours = next(r for r in section["rows"] if r["setting"] == "atari" and r["precision"] == "auto")
        ratios = [a / b for a, b in zip(ours["steps_per_second"], sb3["steps_per_second"])]
        lines += ["", f"Stable-Baselines3's PPO with the atari settings (`python -m benchmarks.sb3_atari`), in each "
                  f"round after ours: {listing(sb3['steps_per_second'])} steps/s, peak RSS "
                  f"{max(sb3['peak_rss_mb']):,} MB. Ours with `auto` against it: {listing(ratios, '.2f')} times "
                  "its steps/s."]
    atari = [r for r in section["rows"] if r["setting"] == "atari" and r.get("phase_seconds")]
    if atari:
        lines += ["", "Where an Atari run's training time goes, in its first round:", ""]
        lines += [f"- {r['precision']}: {atari_phases(r['phase_seconds'][0])}" for r in atari]
        fastest = max(max(r["steps_per_second"]) for r in atari)
        lines += ["", f"At {fastest:,} steps/s, 1M env steps take {1e6 / fastest / 60:.0f} minutes and CleanRL's "
                  f"10M about {1e7 / fastest / 3600:.0f} hours on one core."]
    return "\n".join([provenance(section), "", *lines])


def atari_phases(seconds: dict) -> str:
    """A run's training seconds by phase (:class:`ppo.timing.PhaseTimer`), in words."""
    return (f"update backward {seconds['update_backward']:.1f} s, update forward {seconds['update_forward']:.1f} s, "
            f"Adam {seconds['update_optimizer']:.1f} s, collecting {seconds['collect']:.1f} s "
            f"({seconds['env_step']:.1f} s of it the env), values for GAE {seconds['advantages']:.2f} s")


def precision_learning(data: dict) -> str:
    section = data["precision_learning"]
    lines = ["| game | env steps | seeds | fp32: final scores | fp32: IQM [95% CI] | bf16: final scores "
             "| bf16: IQM | bf16's IQM inside fp32's interval |", "| --- " * 8 + "|"]
    for r in section["rows"]:
        fp32, bf16 = r["fp32"], r["bf16"]
        inside = "—"
        if fp32["ci"] is not None and bf16["iqm"] is not None:
            low, high = fp32["ci"]
            inside = "yes" if low <= bf16["iqm"] <= high else "no, above" if bf16["iqm"] > high else "no, below"
        interval = "" if fp32["ci"] is None else f" [{fp32['ci'][0]:.1f}, {fp32['ci'][1]:.1f}]"
        scores = [listing(runs["final_scores"], ".1f") if runs["final_scores"] else "—" for runs in (fp32, bf16)]
        lines.append(f"| {r['env_id']} | {r['budget']:,} | {listing(r['seeds'])} | {scores[0]} "
                     f"| {number(fp32['iqm'], '.1f')}{interval} | {scores[1]} | {number(bf16['iqm'], '.1f')} "
                     f"| {inside} |")
    return "\n".join([provenance(section), "", *lines])


def precision_atari(data: dict) -> str:
    section = data["precision_atari"]
    lines = ["| game | seed | env steps | fp32: last 100-episode mean | bf16: last 100-episode mean "
             "| bf16 of fp32, above the lowest score | fp32: greedy score | bf16: greedy score "
             "| steps/s fp32, bf16 |", "| --- " * 9 + "|"]
    for r in section["rows"]:
        fp32, bf16 = r["fp32"] or {}, r["bf16"] or {}
        fraction = "—" if r["bf16_of_fp32"] is None else f"{r['bf16_of_fp32']:.0%}"
        speeds = ", ".join(number(runs.get("steps_per_second")) for runs in (fp32, bf16))
        lines.append(f"| {r['env_id']} | {r['seed']} | {r['budget']:,} | {number(fp32.get('mean_score_100'), '.1f')} "
                     f"| {number(bf16.get('mean_score_100'), '.1f')} | {fraction} "
                     f"| {number(fp32.get('final_score'), '.1f')} | {number(bf16.get('final_score'), '.1f')} "
                     f"| {speeds} |")
    return "\n".join([provenance(section), "", *lines])


# ---------------------------------------------------------------------------------------------------
# POPULATIONS (benchmarks.population)
# ---------------------------------------------------------------------------------------------------

def _launch_values(launch: dict, metric: str, budget: float | None = None) -> np.ndarray:
    values = [run[metric] if run[metric] is not None else budget for run in launch["runs"].values()]
    return np.array([value for value in values if value is not None], dtype=float)


def population_scaling(data: dict) -> str:
    section = data["scaling"]
    counts = sorted({point["members"] for row in section["rows"] for point in row["points"]})
    lines = ["| setting | steps per member | " + " | ".join(f"K={k}" for k in counts) + " |",
             "| --- | --- | " + " | ".join("---" for _ in counts) + " |"]
    for row in section["rows"]:
        by_count = {point["members"]: point for point in row["points"]}
        single = by_count[1]["steps_per_second_per_member"]
        speeds = {k: point["steps_per_second_per_member"] for k, point in by_count.items()}
        cells = [f"{speeds[k]:,.0f} ({speeds[k] * k / single:.1f}x)" if k in speeds else "—" for k in counts]
        lines.append(f"| {row['setting']} | {row['steps_per_member']:,} | " + " | ".join(cells) + " |")
    memory = [f"{row['setting']}, K={point['members']}: {point['peak_rss_mb']:,.0f} MB"
              for row in section["rows"] for point in row["points"] if point["members"] in (max(counts), 16)]
    return "\n".join(lines) + "\n\nPeak resident memory of the process: " + "; ".join(memory) + ".\n\n" + \
        provenance(section)


def population_sweep(data: dict) -> str:
    from ppo.report.stats import bootstrap_ci, iqm

    section = data["sweep"]
    by_launcher = {launcher: [r for r in section["rounds"] if r["launcher"] == launcher]
                   for launcher in ("joblib", "population")}
    walls = {launcher: float(np.mean([r["wall_seconds"] for r in rounds])) for launcher, rounds in by_launcher.items()}
    aucs = {launcher: np.concatenate([_launch_values(r, "auc") for r in rounds])
            for launcher, rounds in by_launcher.items()}
    lines = ["| launcher | sweep wall time (s), per round | mean | runs finished | IQM of AUC [95% CI] |",
             "| --- | --- | --- | --- | --- |"]
    for launcher, rounds in by_launcher.items():
        low, high = bootstrap_ci([aucs[launcher]])
        per_round = ", ".join(f"{r['wall_seconds']:.0f}" for r in rounds)
        lines.append(f"| {launcher} | {per_round} | "
                     f"{walls[launcher]:.0f} | {sum(len(r['runs']) for r in rounds)} | "
                     f"{iqm(aucs[launcher]):.1f} [{low:.1f}, {high:.1f}] |")
    rng = np.random.default_rng(0)
    differences = [iqm(rng.choice(aucs["population"], aucs["population"].size)) -
                   iqm(rng.choice(aucs["joblib"], aucs["joblib"].size)) for _ in range(5000)]
    low, high = np.percentile(differences, [2.5, 97.5])
    distinct = all(len({round(run["auc"], 9) for name, run in r["runs"].items() if name.endswith(f"seed={seed}")}) == 9
                   for r in by_launcher["population"] for seed in (1, 2, 3))
    train = np.mean([run["train_seconds"] for r in by_launcher["population"] for run in r["runs"].values()])
    return "\n".join(lines) + (
        f"\n\nThe population took {walls['population'] / walls['joblib']:.2f} of joblib's wall time. IQM of AUC, "
        f"population minus joblib: {iqm(aucs['population']) - iqm(aucs['joblib']):+.1f}, 95% bootstrap interval "
        f"[{low:.1f}, {high:.1f}]. Within each seed the 9 (ε, λ) members' AUCs all differ: "
        f"{'yes' if distinct else 'no'}. A population's wall time is its members' training loop, "
        f"{train:.0f} s on average (the members train together, so each member's loop spans the population's), "
        f"and everything outside it: start-up, composing 27 configs, evaluation and writing, "
        f"{walls['population'] - train:.0f} s.\n\n") + provenance(section)


def population_grid(data: dict) -> str:
    section = data["grid"]
    launches = section["launches"]
    lines = ["| key = value | " + " | ".join(f"{launch['launcher']}: IQM steps to solve [95% CI]"
                                                 for launch in launches) + " |", "| --- | --- | --- |"]
    for effects in zip(*(launch["effects"] for launch in launches)):
        cells = [f"{e['iqm']:,.0f} [{e['low']:,.0f}, {e['high']:,.0f}]" for e in effects]
        lines.append(f"| {effects[0]['key']} = {effects[0]['value']} | " + " | ".join(cells) + " |")
    walls = ", ".join(f"{launch['launcher']} {launch['wall_seconds'] / 60:.1f} min ({len(launch['runs'])} runs)"
                      for launch in launches)
    return "\n".join(lines) + f"\n\nWall time: {walls}.\n\n" + provenance(section)


def population_equivalence(data: dict) -> str:
    from scipy.stats import mannwhitneyu

    section = data["equivalence"]
    population, single = section["launches"]
    budget = 150_000
    steps = {launch["launcher"]: _launch_values(launch, "steps_to_solve", budget) for launch in (population, single)}
    rng = np.random.default_rng(0)
    differences = [np.median(rng.choice(steps["population"], steps["population"].size)) -
                   np.median(rng.choice(steps["joblib"], steps["joblib"].size)) for _ in range(5000)]
    low, high = np.percentile(differences, [2.5, 97.5])
    p_value = mannwhitneyu(steps["population"], steps["joblib"]).pvalue
    lines = ["| seeds 1–10 | steps to solve, per seed | median |", "| --- | --- | --- |"]
    for launch, label in ((population, "one population of 10"), (single, "10 single runs (joblib)")):
        by_seed = sorted(launch["runs"].items(), key=lambda item: int(item[0].rsplit("=", 1)[1]))
        values = [run["steps_to_solve"] for _, run in by_seed]
        lines.append(f"| {label} | {', '.join('—' if v is None else f'{v:,}' for v in values)} | "
                     f"{np.median(steps[launch['launcher']]):,.0f} |")
    return "\n".join(lines) + (
        f"\n\nMann-Whitney U p = {p_value:.2f}; median of the population minus median of the single runs "
        f"{np.median(steps['population']) - np.median(steps['joblib']):+,.0f} steps, 95% bootstrap interval "
        f"[{low:+,.0f}, {high:+,.0f}]. A run that never solves counts at the budget, {budget:,}.\n\n"
    ) + provenance(section)



# ---------------------------------------------------------------------------------------------------
# THE PAGES
# ---------------------------------------------------------------------------------------------------

PAGES: dict[str, dict[str, Callable[[dict], str]]] = {
    "population": {"scaling": population_scaling, "sweep": population_sweep, "grid": population_grid,
                   "equivalence": population_equivalence},
    "classic_control": {"suite": classic_suite},
    "mujoco": {"suite": mujoco_suite, "per_network": per_network, "sb3_v5": sb3_v5, "ant_v3_task": ant_v3_task,
               "ant_ablation": ant_ablation, "cleanrl_settings": cleanrl_settings},
    "pixels": {"minatar": minatar, "gymnax_blines": gymnax_blines, "atari": atari},
    "performance": {"default_preset": default_preset, "default_preset_more_seeds": default_preset_more_seeds,
                    "tutorial_300_games": tutorial_300_games, "compare": compare, "crossover": crossover,
                    "compile_learning": compile_learning, "mujoco_wall_time": mujoco_wall_time,
                    "half_cheetah_profile": half_cheetah_profile, "atari_envs": atari_envs,
                    "precision_speed": precision_speed,
                    "precision_learning": precision_learning, "precision_atari": precision_atari},
}
RENDER_COMMANDS = {
    "population": "python -m benchmarks.population --render",
    "classic_control": "python -m benchmarks.suite --render",
    "mujoco": "python -m benchmarks.suite --suite mujoco --render",
    "pixels": "python -m benchmarks.atari --render",
    "performance": "python -m benchmarks.benchmark --render",
}
