"""The server's evaluation of the global adapter on a held-out set every round.

The held-out set is the seeded test split of the run's CSV/JSONL, or the
synthetic held-out set made from its own seeded stream (at most
``common.data.synthetic.streams.HELD_OUT_CAP`` rows, whatever ``num-branches``) (desensitized
exactly as a branch would -- records also serialized the same way -- so the
model sees the same placeholders and text).  The evaluator keeps one model;
each call loads the round's adapter arrays and records what
:func:`common.model.metrics.evaluate` returns for the run's task: loss, accuracy
and macro-F1, plus ROC-AUC, KS and F1 (credit) or PR-AUC and recall at 1 %
false-positive rate (fraud); for ``chat``, the held-out dialogues' reply-token
loss and perplexity and the ROUGE-L of generated replies
(:func:`common.model.metrics.evaluate_chat`).
"""

from __future__ import annotations

from flwr.app import ArrayRecord, MetricRecord
from flwr.common.logger import log

from common.config.run import RunConfig
from common.data.corpus import Corpus
from common.data.sources import TokenizedSet, encode_labels, holdout_corpus, tokenize
from common.privacy.desensitize import Desensitizer
from common.tasks.chat import ChatHoldout, tokenize_dialogues
from common.data.dialogues import desensitize_dialogues, held_out_dialogues
from common.model.device import resolve_device
from common.model.metrics import evaluate, evaluate_chat
from common.tasks.spec import METRIC_TITLES, render_corpus, task_of
from common.model.build import build_peft_model, load_tokenizer
from common.model.adapter import load_adapter_arrays
from common.wire.protocol import record_to_arrays
from server.records.metrics import RunRecorder


def holdout_set(cfg: RunConfig, tokenizer) -> tuple[TokenizedSet, list[str]]:
    """The desensitized, tokenized held-out set and the run's labels.

    Raises:
        DataError: a label is outside the run's label set, or (user data) a
            held-out label occurs in no training row: its metrics would mean nothing.
    """
    test, names = holdout_corpus(cfg)  # synthetic: its own stream, bounded size; never the whole federation
    return tokenize_corpus(test, names, tokenizer, cfg.model.max_length, where="held-out set", cfg=cfg), names


def chat_holdout(cfg: RunConfig, tokenizer) -> ChatHoldout:
    """The held-out dialogues, desensitized on both sides as a branch would: tokenized, plus prompts and references."""
    prompts, replies, _ = desensitize_dialogues(held_out_dialogues(cfg))
    return ChatHoldout(tokenize_dialogues(prompts, replies, tokenizer, cfg.model.max_length), prompts, replies)


def tokenize_corpus(corpus: Corpus, names: list[str], tokenizer, max_length: int, where: str, cfg: RunConfig | None = None) -> TokenizedSet:
    """Desensitize (records: and serialize, which needs ``cfg``) and tokenize a labelled corpus."""
    if corpus.records is not None:
        if cfg is None:
            raise ValueError("a corpus of records needs the run config (column mapping) to be serialized")
        texts, _ = render_corpus(corpus, cfg)
    else:
        desensitizer = Desensitizer()
        texts = [desensitizer.apply(t).text for t in corpus.texts]
    return tokenize(texts, encode_labels(corpus.labels, names, where), tokenizer, max_length)


class HoldoutEvaluator:
    """``evaluate_fn`` for ``Strategy.start``: held-out metrics of each round's adapter."""

    def __init__(self, cfg: RunConfig, recorder: RunRecorder) -> None:
        self.cfg = cfg
        self.task = task_of(cfg)
        self.tokenizer = load_tokenizer(cfg.model)
        if self.task.generative:
            self.data, self.labels = chat_holdout(cfg, self.tokenizer), []
        else:
            self.data, self.labels = holdout_set(cfg, self.tokenizer)
        self.model = build_peft_model(cfg.model, len(self.labels), vocab_size=len(self.tokenizer),
                                      device=resolve_device(cfg), causal=self.task.generative, label_names=self.labels)
        self.recorder = recorder
        self.num_rounds = cfg.federation.num_rounds

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        load_adapter_arrays(self.model, record_to_arrays(arrays))
        t = self.cfg.task
        if self.task.generative:
            metrics = evaluate_chat(self.model, self.data, self.tokenizer, self.cfg.model.max_length, t.max_new_tokens,
                                    t.generate_examples)
        else:
            metrics = evaluate(self.model, self.data, task=self.task.name, threshold=t.threshold)
        self.recorder.add_evaluation(server_round, metrics)
        eps = [b["epsilon"] for b in self.recorder.final().get("branches", {}).values() if b["epsilon"] is not None]
        extra = "".join(f" {METRIC_TITLES[k]} {metrics[k]:.4f}" for k in self.task.metrics if k in METRIC_TITLES)
        log(20, "fedbank round %d/%d: held-out loss %.4f%s%s", server_round, self.num_rounds, metrics["loss"], extra,
            f" | epsilon max {max(eps):.3f}" if eps else "")
        return MetricRecord(metrics)
