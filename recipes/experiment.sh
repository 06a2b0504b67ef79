# Stages 1-10 of every recipe, sourced by recipes/<corpus>/run.sh after its own stage 0 (data
# preparation, the only part that differs between corpora). Expects from run.sh and lib.sh: the
# stage/option variables, $conf, $T, ${teachers[@]}, and the current directory = $work.
# Stages: 1 features, 2 units, 3 alignment, 4 teachers + baselines, 5 soft-target cache, 6 students,
# 7 temperature sweep and the other cache format*, 8 small-data experiment*, 9 evaluation,
# 10 report (*: --extra true). Baselines and students: $num_seeds of each (exp/baseline_s<k>,
# exp/student_s<k>), so that the report gives their mean and spread over seeds.

if stage 1 "features: 40 log-mel filterbanks + CMVN stats"; then
  for s in train dev test; do asrkd compute-feats --config "$conf/fbank.yaml" --nj "$nj" "data/$s"; done
fi

if stage 2 "units: label inventory data/lang"; then
  asrkd make-units --config "$conf/units.yaml" data/train data/lang
fi

if stage 3 "alignment: flat-start aligner on train; dev and test aligned by it (before any teacher)"; then
  skip=(--skip-unalignable --max-skip-fraction "$max_unaligned")  # each one a WARNING, listed in labels/ali/failed
  asrkd align --config "$conf/align.yaml" --exp exp/align --name ali "${skip[@]}" data/train data/lang
  for s in dev test; do asrkd align --model exp/align/final.gmm.npz --name ali "${skip[@]}" "data/$s" data/lang; done
fi

if stage 4 "teachers 1..$num_teachers and $num_seeds baseline(s) (hard labels, teacher size, seeds from $baseline_seed)"; then
  transfer_set  # (transfer_copies > 0) the baselines (and with teachers_on_copies the teachers) train on it
  # shellcheck disable=SC2046  # teacher_data_args: several words or none
  for k in $(seq "$num_teachers"); do
    pjob "exp/teacher_$k/run.log" train_model "$conf/teacher.yaml" "exp/teacher_$k" --seed "$k" $(teacher_data_args)
  done
  for k in $(seq "$num_seeds"); do
    pjob "exp/baseline_s$k/run.log" train_model "$conf/teacher.yaml" "exp/baseline_s$k" --seed $((baseline_seed + k - 1)) \
      --feats "$(kd_data)" --labels "$(kd_data)/labels/ali"
    # With a transfer set, also baselines on data/train alone: the report compares the student
    # with the better of the two kinds on dev (the fair comparison).
    if [ "$transfer_copies" -gt 0 ]; then
      pjob "exp/baseline_plain_s$k/run.log" train_model "$conf/teacher.yaml" "exp/baseline_plain_s$k" \
        --seed $((baseline_seed + k - 1))
    fi
  done
  pwait
fi

if stage 5 "soft-target cache: the ensemble's mean posteriors at T=$T on $(kd_data)"; then
  transfer_set
  cache_targets "exp/cache_T$T" "$T" "$(kd_data)" "${teachers[@]}"
fi

if stage 6 "$num_seeds student(s): hard labels + soft targets at T=$T (seeds from $student_seed)"; then
  students "exp/cache_T$T" exp
fi

if [ "$extra" = true ] && stage 7 "temperature sweep (a cache and a student per T in $sweep_temperatures) and the other cache format"; then
  temperature_sweep "$sweep_temperatures" "${teachers[@]}"
  other_cache_format "${teachers[@]}"
fi

if [ "$extra" = true ] && stage 8 "small data: $small_fraction of train, hard labels vs soft targets of the full-data ensemble"; then
  small_data_experiment "$small_fraction" "exp/cache_T$T"
fi

if stage 9 "evaluation: frame accuracy (every model) and WER (ensemble, first baseline and student) on dev and test"; then
  pjob exp/ensemble/eval.log evaluate_sets exp/ensemble "${teachers[@]}"
  for k in $(seq "$num_seeds"); do
    for m in baseline student $([ "$transfer_copies" -gt 0 ] && echo baseline_plain); do
      if [ "$k" -eq 1 ]; then how=evaluate_sets; else how=evaluate_frames; fi
      pjob "exp/${m}_s$k/eval.log" "$how" "exp/${m}_s$k" "exp/${m}_s$k/final.pt"
    done
  done
  for k in $(seq "$num_teachers"); do pjob "exp/teacher_$k/eval.log" evaluate_frames "exp/teacher_$k" "exp/teacher_$k/final.pt"; done
  pwait
fi

if stage 10 "report: exp/RESULTS.md, exp/results.json, exp/temperature_sweep.png"; then
  asrkd report exp
fi
