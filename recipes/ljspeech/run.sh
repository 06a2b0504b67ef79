#!/usr/bin/env bash
# LJ Speech 1.1 (here: the 385-clip subset in ../shared/data): the experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6, ending with Table 1.
#   bash recipes/ljspeech/run.sh                     # defaults (conf/)
#   bash recipes/ljspeech/run.sh --corpus DIR        # the corpus elsewhere
#   bash recipes/ljspeech/run.sh --extra true        # + temperature sweep and small-data experiment
# Stages: 0 data + word LM, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus=$recipe/../../../shared/data/ljspeech/LJSpeech-1.1  # the corpus, as distributed
lm_metadata=$recipe/../../../shared/data/ljspeech/lm/metadata_other.csv  # LM text: LJ Speech lines not in the corpus ('' for none)
path_options=(corpus lm_metadata)  # made absolute by lib.sh
# Every option of lib.sh (--stage --stop-stage --work --conf --extra) and every setting of
# $conf/recipe.yaml (--num-teachers 2 wins over the file) is an option too.
. "$recipe/../lib.sh"

if stage 0 "data: $corpus -> data/{train,dev,test}, LM text data/lm_text.txt"; then
  "$PYTHON" "$ASRKD_ROOT/data_prep/ljspeech.py" "$corpus" data ${lm_metadata:+--lm-metadata "$lm_metadata"}
fi

if stage 0 "word LM: data/lm_text.txt + training transcripts -> data/lm (lm.arpa; lm.json: perplexity, OOV rate)"; then
  asrkd train-lm --config "$conf/lm.yaml" ${lm_metadata:+--text data/lm_text.txt} --train-data data/train --dev data/dev --test data/test --out data/lm
fi

. "$recipe/../experiment.sh"  # stages 1-10, the same for every corpus
