"""The server's evaluation of the global adapter on a held-out set every round.

The held-out set is the seeded test split of the run's CSV/JSONL, or the
synthetic held-out set made from its own seeded stream (at most
``common.data.synthetic.streams.HELD_OUT_CAP`` rows, whatever ``num-branches``),
desensitized exactly as a branch's -- by the same step,
:mod:`common.privacy.render`, records also serialized the same way -- so the
model sees the same placeholders and text.  The evaluator keeps one model;
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
from common.data.sources import holdout_corpus, renderer_for
from common.model.adapter import load_adapter_arrays
from common.model.build import build_peft_model, load_tokenizer
from common.model.device import resolve_device
from common.model.metrics import evaluate, evaluate_chat
from common.tasks.chat import ChatHoldout
from common.tasks.checks import check_task
from common.tasks.examples import task_examples
from common.tasks.spec import METRIC_TITLES, task_of
from common.tasks.tokens import TokenizedSet
from common.wire.protocol import record_to_arrays
from server.records.metrics import RunRecorder


def holdout_set(cfg: RunConfig, tokenizer) -> tuple[TokenizedSet | ChatHoldout, list[str]]:
    """The held-out set, desensitized and rendered exactly as a branch would, tokenized; and the run's labels.

    A classifier's is its tokenized examples; ``chat``'s (a :class:`~common.tasks.chat.ChatHoldout`)
    also keeps the masked prompts and reference replies for ROUGE-L.  Runs the task checks.

    Raises:
        DataError: a label is outside the run's label set, or (user data) a
            held-out label occurs in no training row: its metrics would mean nothing.
    """
    task = check_task(cfg)
    test, labels = holdout_corpus(cfg, task)  # synthetic: its own stream, bounded size; never the whole federation
    rendered = renderer_for(cfg, task).render(test.texts, test.records, test.responses)
    encoded = labels.encode(test.labels, "held-out set") if task.labelled else None
    tokens = task_examples(task, rendered, encoded, tokenizer, cfg.model.max_length)
    if task.generative:
        return ChatHoldout(tokens, rendered.texts, rendered.responses), list(labels.names)
    return tokens, list(labels.names)


class HoldoutEvaluator:
    """``evaluate_fn`` for ``Strategy.start``: held-out metrics of each round's adapter."""

    def __init__(self, cfg: RunConfig, recorder: RunRecorder) -> None:
        self.cfg = cfg
        self.task = task_of(cfg)  # holdout_set runs the task checks
        self.tokenizer = load_tokenizer(cfg.model)
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
