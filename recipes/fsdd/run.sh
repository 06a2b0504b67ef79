#!/usr/bin/env bash
# Free Spoken Digit Dataset (6 speakers, takes 0-4 test, 5-9 dev): the experiment of Hinton, Vinyals & Dean (2015) sections 4 and 6, ending with Table 1.
#   bash recipes/fsdd/run.sh                     # defaults (conf/)
#   bash recipes/fsdd/run.sh --corpus DIR        # the corpus elsewhere
#   bash recipes/fsdd/run.sh --extra true        # + temperature sweep and small-data experiment
# Stages: 0 data + word LM, 1 features, 2 units, 3 alignment, 4 teachers + baseline, 5 soft-target cache,
# 6 student, 7 temperature sweep*, 8 small-data experiment*, 9 evaluation, 10 report (*: --extra true).
recipe="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
corpus=$recipe/../../../shared/data/fsdd/recordings  # the corpus, as distributed
path_options=(corpus)  # made absolute by lib.sh
# Every option of lib.sh (--stage --stop-stage --work --conf --extra) and every setting of
# $conf/recipe.yaml (--num-teachers 2 wins over the file) is an option too.
. "$recipe/../lib.sh"

if stage 0 "data: $corpus -> data/{train,dev,test}"; then
  "$PYTHON" "$ASRKD_ROOT/data_prep/fsdd.py" "$corpus" data
fi

if stage 0 "word LM: a word loop over the training words (conf/lm.yaml) -> data/lm (lm.arpa; lm.json: perplexity, OOV rate)"; then
  asrkd train-lm --config "$conf/lm.yaml" --train-data data/train --dev data/dev --test data/test --out data/lm
fi

. "$recipe/../experiment.sh"  # stages 1-10, the same for every corpus
