# Stages 1-10 of every recipe, sourced by recipes/<corpus>/run.sh after its own stage 0 (data
# preparation, the only part that differs between corpora), inside the work directory.
# The experiment's design (which models, on which data, with which seeds, configs and caches,
# evaluated how) is asrkd/experiment/plan.py, its paths asrkd/experiment/layout.py: run_plan runs
# the commands of a step of it; `asrkd recipe-plan --conf DIR [STEP]` prints them all.
# Stages: 1 features, 2 units, 3 alignment + word graph, 4 teachers + baselines, 5 soft-target cache,
# 6 students, 7 temperature sweep and the other cache format*, 8 small-data experiment*,
# 9 evaluation, 10 report (*: --extra true).

plan=$(asrkd recipe-plan --conf "$conf" "${recipe_set[@]}")

if stage 1 "features: 40 log-mel filterbanks + CMVN stats"; then
  run_plan features
fi

if stage 2 "units: label inventory data/lang"; then
  run_plan units
fi

if stage 3 "alignment: flat-start aligner on train (tied states when align.yaml asks); dev and test aligned by it (before any teacher); the word decoding graph"; then
  run_plan alignment graph
fi

if stage 4 "teachers 1..$num_teachers and $num_seeds baseline(s) (hard labels, teacher size, seeds from $baseline_seed; transfer copies: $transfer_copies)"; then
  run_plan transfer-set teachers-and-baselines
fi

if stage 5 "soft-target cache: the ensemble's mean posteriors at the students' T"; then
  run_plan transfer-set cache
fi

if stage 6 "$num_seeds student(s): hard labels + soft targets (seeds from $student_seed)"; then
  run_plan students
fi

if [ "$extra" = true ] && stage 7 "temperature sweep (a cache and a student per T in $sweep_temperatures) and the other cache format"; then
  run_plan sweep other-format
fi

if [ "$extra" = true ] && stage 8 "small data: $small_fraction of train, hard labels vs soft targets of the full-data ensemble"; then
  run_plan small-data
fi

if stage 9 "evaluation: frame accuracy (every model) and WER (ensemble, first baseline and student) on dev and test"; then
  run_plan evaluation
fi

if stage 10 "report: exp/RESULTS.md, exp/results.json, exp/temperature_sweep.png"; then
  run_plan report
fi
