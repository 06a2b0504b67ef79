#!/usr/bin/env bash
# LibriSpeech (subsets as flags; tested on a tiny generated copy): the experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6, ending with Table 1.
#   bash recipes/librispeech/run.sh                     # defaults (conf/)
#   bash recipes/librispeech/run.sh --corpus DIR        # the corpus elsewhere
#   bash recipes/librispeech/run.sh --extra true        # + temperature sweep and small-data experiment
# Stages: 0 data + word LM, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus=$recipe/../../../shared/data/LibriSpeech  # the corpus, as distributed
train_sets=train-clean-100  # subsets (comma lists merge)
dev_sets=dev-clean
test_sets=test-clean
lm_text=                  # optional LM text (one sentence per line) added to the training transcripts
path_options=(corpus lm_text)  # made absolute by lib.sh
# Every option of lib.sh (--stage --stop-stage --work --conf --extra) and every setting of
# $conf/recipe.yaml (--num-teachers 2 wins over the file) is an option too.
. "$recipe/../lib.sh"

if stage 0 "data: $corpus ($train_sets / $dev_sets / $test_sets) -> data/{train,dev,test}"; then
  "$PYTHON" "$ASRKD_ROOT/data_prep/librispeech.py" --train "$train_sets" --dev "$dev_sets" --test "$test_sets" "$corpus" data
fi

if stage 0 "word LM: training transcripts ${lm_text:++ $lm_text} -> data/lm (lm.arpa; lm.json: perplexity, OOV rate)"; then
  asrkd train-lm --config "$conf/lm.yaml" ${lm_text:+--text "$lm_text"} --train-data data/train --dev data/dev --test data/test --out data/lm
fi

. "$recipe/../experiment.sh"  # stages 1-10, the same for every corpus
