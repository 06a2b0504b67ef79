#!/usr/bin/env bash
# Synthetic-corpus recipe (the README's main job): generate a multi-voice TTS corpus, then the
# whole experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6 on it, ending with Table 1.
#   bash recipes/synth/run.sh                      # defaults (conf/: tied states, word graph), CPU
#   bash recipes/synth/run.sh --conf recipes/synth/conf/tiny --work /tmp/synth_tiny   # smoke size
#   bash recipes/synth/run.sh --extra true         # + temperature sweep and small-data experiment
# Stages: 0 data + word LM, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
path_options=()  # made absolute by lib.sh
# Every option of lib.sh (--stage --stop-stage --work --conf --extra) and every setting of
# $conf/recipe.yaml (--num-teachers 2 wins over the file) is an option too.
. "$recipe/../lib.sh"

if stage 0 "data: synthesise the corpus (preset $synth_preset) into corpus/, data dirs into data/"; then
  "$PYTHON" -m data_prep.synth make --preset "$synth_preset" --seed "$synth_seed" --out corpus --nj "$nj"
  "$PYTHON" -m data_prep.synth lm-text --corpus corpus  # corpus/lm_text.txt: the KJV without the corpus's sentences
  for s in train dev test; do asrkd combine-data "data/$s" "corpus/$s"; done
fi

if stage 0 "word LM: corpus/lm_text.txt + training transcripts -> data/lm (lm.arpa; lm.json: perplexity, OOV rate)"; then
  asrkd train-lm --config "$conf/lm.yaml" --text corpus/lm_text.txt --train-data data/train --dev data/dev --test data/test --out data/lm
fi

. "$recipe/../experiment.sh"  # stages 1-10, the same for every corpus
