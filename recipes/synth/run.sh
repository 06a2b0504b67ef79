#!/usr/bin/env bash
# Synthetic-corpus recipe (the README's main job): generate a multi-voice TTS corpus, then the
# whole experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6 on it, ending with Table 1.
#   bash recipes/synth/run.sh                      # defaults (conf/), CPU, < 20 minutes
#   bash recipes/synth/run.sh --conf recipes/synth/conf/tiny --work /tmp/synth_tiny   # smoke size
#   bash recipes/synth/run.sh --extra true         # + temperature sweep and small-data experiment
# Stages: 0 data, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stage=0
stop_stage=100
work=$recipe              # data/, exp/ and corpus/ are written here
conf=$recipe/conf         # step configs (*.yaml) and the recipe settings (recipe.yaml)
extra=false               # run the temperature sweep (7) and the small-data experiment (8)
# Settings from $conf/recipe.yaml (a --name value on the command line wins):
nj=; synth_preset=; synth_seed=; num_teachers=; baseline_seed=; cache_format=; cache_k=
sweep_temperatures=; small_fraction=
. "$recipe/../lib.sh"
conf=$(cd "$conf" && pwd)  # absolute: the steps run inside $work
load_conf "$conf/recipe.yaml"
T=$(conf_get "$conf/student.yaml" loss.temperature)
mkdir -p "$work" && cd "$work"
teachers=(); for k in $(seq "$num_teachers"); do teachers+=("exp/teacher_$k/final.pt"); done

if stage 0 "data: synthesise the corpus (preset $synth_preset) into corpus/, data dirs into data/"; then
  "$PYTHON" -m data_prep.synth make --preset "$synth_preset" --seed "$synth_seed" --out corpus --nj "$nj"
  for s in train dev test; do new_data_dir "data/$s" asrkd combine-data "data/$s" "corpus/$s"; done
fi

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
