"""``python -m ppo.report SWEEP_DIR``: tables, statistics and plots of a sweep, finished or still running.

Reads each run directory under ``SWEEP_DIR`` (any directory with Hydra's ``.hydra/``): its overrides
from ``.hydra/overrides.yaml``, its result from ``metrics.json`` (written when a run ends), its failure
from ``failed.json`` (see :mod:`ppo.sweep`), and its learning curve from its TensorBoard event files
with TensorBoard's own reader. Runs with the same overrides apart from ``seed`` form one *setting*.
Writes into ``SWEEP_DIR`` (or ``--out``):

* ``report.md``: the settings ranked by the interquartile mean (IQM) over seeds of one metric
  (``--metric``; default: the runs' ``train.objective``), with 95% bootstrap confidence intervals of
  the IQM of every metric and the probability that the best setting improves on each other one
  (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS
  2021); the effect of each swept key (IQM and CI over every run with each value); mean ± std over
  seeds of the final greedy score, the best 100-episode mean, the env steps to solve and the training
  seconds; then the failed and unfinished runs;
* ``report.csv``: the settings, one column per number; ``runs.csv``: one row per run;
* ``sample_efficiency.png``: the IQM over seeds of the 100-episode mean score against env steps with
  its CI band, one line per setting, in small multiples over the swept values;
* ``effects.png``: the IQM and CI of the ranking metric at each value of each swept key;
* ``learning_curves.png``: the same curves as mean ± std over seeds;
* ``final_score.png``: the final score (and the best 100-episode mean) of every run against each
  swept key, with the mean ± std over all runs at each value.

Only finished runs enter the numbers and plots, and of those only the values that metrics.json holds as
numbers: a null or NaN metric is missing, the report names the finished runs without a ranking metric
and why, and each statistic says how many runs it is taken from. Failed runs are listed with their
error, and runs without a result (still running, killed, not started, or with a metrics.json that cannot
be read) with how far they got. A directory that holds no sweep runs is refused
(:class:`~ppo.report.runs.NotASweepError`) before anything is written.

The modules: :mod:`~ppo.report.runs` reads runs and groups them into settings, :mod:`~ppo.report.stats`
holds the statistics (numpy only), :mod:`~ppo.report.tables` the markdown and CSV files,
:mod:`~ppo.report.plots` the figures, :mod:`~ppo.report.write` writes them all
(:func:`~ppo.report.write.write_report`), and :mod:`~ppo.report.__main__` is the command line.
"""
