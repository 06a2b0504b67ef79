# Stages 1-10 of every recipe, sourced by recipes/<corpus>/run.sh after its own stage 0 (data
# preparation, the only part that differs between corpora). Expects from run.sh and lib.sh: the
# stage/option variables, $conf, $T, ${teachers[@]}, and the current directory = $work.
# Stages: 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache, 6 student,
# 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).

if stage 1 "features: 40 log-mel filterbanks + CMVN stats"; then
  for s in train dev test; do asrkd compute-feats --config "$conf/fbank.yaml" --nj "$nj" "data/$s"; done
fi

if stage 2 "units: label inventory data/lang"; then
  asrkd make-units --config "$conf/units.yaml" data/train data/lang
fi

if stage 3 "alignment: flat-start aligner on train; dev and test aligned by it (before any teacher)"; then
  asrkd align --config "$conf/align.yaml" --exp exp/align --name ali data/train data/lang
  for s in dev test; do asrkd align --model exp/align/final.gmm.npz --name ali "data/$s" data/lang; done
fi

if stage 4 "teachers 1..$num_teachers and the baseline (hard labels, teacher size, seed $baseline_seed)"; then
  for k in $(seq "$num_teachers"); do pjob "exp/teacher_$k/run.log" train_model "$conf/teacher.yaml" "exp/teacher_$k" --seed "$k"; done
  pjob exp/baseline/run.log train_model "$conf/teacher.yaml" exp/baseline --seed "$baseline_seed"
  pwait
fi

if stage 5 "soft-target cache: the ensemble's mean posteriors at T=$T"; then
  cache_targets "exp/cache_T$T" "$T" data/train "${teachers[@]}"
fi

if stage 6 "student: hard labels + soft targets at T=$T"; then
  pjob exp/student/run.log train_model "$conf/student.yaml" exp/student --soft-targets "exp/cache_T$T"
  pwait
fi

if [ "$extra" = true ] && stage 7 "temperature sweep: a cache and a student per T in $sweep_temperatures"; then
  temperature_sweep "$sweep_temperatures" "${teachers[@]}"
fi

if [ "$extra" = true ] && stage 8 "small data: $small_fraction of train, hard labels vs soft targets of the full-data ensemble"; then
  small_data_experiment "$small_fraction" "exp/cache_T$T"
fi

if stage 9 "evaluation: frame accuracy and WER of baseline, ensemble, student on dev and test"; then
  pjob exp/baseline/eval.log evaluate_sets exp/baseline exp/baseline/final.pt
  pjob exp/ensemble/eval.log evaluate_sets exp/ensemble "${teachers[@]}"
  pjob exp/student/eval.log evaluate_sets exp/student exp/student/final.pt
  pwait
fi

if stage 10 "report: exp/RESULTS.md, exp/results.json, exp/temperature_sweep.png"; then
  asrkd report exp
fi
