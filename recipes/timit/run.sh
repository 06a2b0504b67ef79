#!/usr/bin/env bash
# TIMIT (LDC layout; standard train / 50-speaker dev / core test; tested on a tiny generated copy): the experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6, ending with Table 1.
#   bash recipes/timit/run.sh                     # defaults (conf/)
#   bash recipes/timit/run.sh --corpus DIR        # the corpus elsewhere
#   bash recipes/timit/run.sh --extra true        # + temperature sweep and small-data experiment
# Stages: 0 data + word LM, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus=$recipe/../../../shared/data/TIMIT  # the corpus, as distributed (LDC)
lm_text=                  # optional LM text (one sentence per line) added to the training transcripts
path_options=(corpus lm_text)  # made absolute by lib.sh
# Every option of lib.sh (--stage --stop-stage --work --conf --extra) and every setting of
# $conf/recipe.yaml (--num-teachers 2 wins over the file) is an option too.
. "$recipe/../lib.sh"

if stage 0 "data: $corpus -> data/{train,dev,test} (SA sentences dropped)"; then
  "$PYTHON" "$ASRKD_ROOT/data_prep/timit.py" "$corpus" data
fi

if stage 0 "word LM: training transcripts ${lm_text:++ $lm_text} -> data/lm (lm.arpa; lm.json: perplexity, OOV rate)"; then
  asrkd train-lm --config "$conf/lm.yaml" ${lm_text:+--text "$lm_text"} --train-data data/train --dev data/dev --test data/test --out data/lm
fi

. "$recipe/../experiment.sh"  # stages 1-10, the same for every corpus
