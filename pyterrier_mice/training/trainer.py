"""One trainer for every model type, on accelerate (CPU, one GPU, or several with
``accelerate launch``/``torchrun``): mixed precision, gradient clipping, warmup + linear decay,
resumable checkpoints, and periodic validation that keeps the best checkpoint."""
from __future__ import annotations

import json
import os
import random
import warnings

import ir_measures
import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from transformers import get_linear_schedule_with_warmup

from .config import TrainConfig
from .data import GroupData
from .losses import get_loss


class PairScorer(nn.Module):
    """Wraps a re-ranker so that training goes through ``forward`` (as DDP requires)."""

    def __init__(self, reranker):
        super().__init__()
        self.model = reranker.model
        self._reranker = [reranker]  # not a submodule

    def forward(self, queries, docs):
        return self._reranker[0].forward_pairs(queries, docs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``reranker`` on ``data`` (a :class:`GroupData`); validates on ``validation``:
    ``(run, qrels)`` with ``run`` a first-stage frame with texts to re-rank."""

    def __init__(self, cfg: TrainConfig, reranker, data: GroupData, validation=None):
        self.cfg, self.reranker, self.data, self.validation = cfg, reranker, data, validation
        self.loss_fn = get_loss(cfg.loss)
        self.measure = ir_measures.parse_measure(cfg.eval.measure)
        self.accelerator = Accelerator(mixed_precision=cfg.precision, cpu=(cfg.device == "cpu"))
        reranker.device = self.accelerator.device
        reranker.model.to(self.accelerator.device).train()
        params = [p for p in reranker.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=1e-8)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, cfg.warmup, cfg.steps)
        self.scorer, self.optimizer, self.scheduler = self.accelerator.prepare(
            PairScorer(reranker), self.optimizer, self.scheduler)
        self.step, self.best = 0, None
        self.history: list[dict] = []

    # ------------------------------------------------------------------ paths
    def _path(self, *parts) -> str:
        return os.path.join(self.cfg.output_dir, *parts)

    def save_model(self, name: str) -> str:
        path = self._path(name)
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.scorer).model.save_pretrained(path)
            self.reranker.tokenizer.save_pretrained(path)
        return path

    def save_checkpoint(self) -> None:
        """A resumable checkpoint: weights, optimizer, scheduler, RNG states, step and best."""
        path = self._path("checkpoint")
        self.accelerator.save_state(path)
        if self.accelerator.is_main_process:
            with open(os.path.join(path, "trainer.json"), "w") as f:
                json.dump({"step": self.step, "best": self.best, "history": self.history}, f)

    def resume(self) -> bool:
        path = self._path("checkpoint")
        if not os.path.exists(os.path.join(path, "trainer.json")):
            return False
        self.accelerator.load_state(path)
        with open(os.path.join(path, "trainer.json")) as f:
            state = json.load(f)
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        return True

    # ------------------------------------------------------------------ validation
    def validate(self) -> float | None:
        if self.validation is None:
            return None
        run, qrels = self.validation
        model = self.reranker.model
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = self.reranker(run)
        model.train()
        value = ir_measures.calc_aggregate([self.measure], qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"}),
                                           res.rename(columns={"qid": "query_id", "docno": "doc_id"}))[self.measure]
        return float(value)

    # ------------------------------------------------------------------ training
    def train(self, stop_after: int | None = None) -> dict:
        """Train to ``cfg.steps`` (resuming from a checkpoint if one exists).

        ``stop_after`` stops after that many steps of this call (to simulate an interruption).
        """
        cfg = self.cfg
        os.makedirs(cfg.output_dir, exist_ok=True)
        if not self.resume():
            seed_everything(cfg.seed)
            if cfg.eval.every and self.validation is not None:
                self.best = {"step": 0, cfg.eval.measure: self.validate()}
                self.history.append({"step": 0, "val": self.best[cfg.eval.measure]})
                self.save_model("best")
        done = 0
        while self.step < cfg.steps and (stop_after is None or done < stop_after):
            groups = self.data.batch(self.step, cfg.batch_size)
            sizes = {len(g.docs) for g in groups}
            if len(sizes) != 1:
                raise ValueError("every group of a batch needs the same number of documents")
            n = sizes.pop()
            queries = [g.query for g in groups for _ in g.docs]
            docs = [d for g in groups for d in g.docs]
            teacher = None
            if groups[0].teacher is not None:
                teacher = torch.tensor([g.teacher for g in groups], device=self.accelerator.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with self.accelerator.autocast():
                    scores = self.scorer(queries, docs).float().view(len(groups), n)
                loss = self.loss_fn(scores, teacher)
            self.accelerator.backward(loss)
            if cfg.max_grad_norm:
                self.accelerator.clip_grad_norm_(self.scorer.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            self.step += 1
            done += 1
            entry = {"step": self.step, "loss": loss.item(), "lr": self.scheduler.get_last_lr()[0]}
            if cfg.eval.every and self.validation is not None and self.step % cfg.eval.every == 0:
                value = self.validate()
                entry["val"] = value
                if self.best is None or value > self.best[cfg.eval.measure]:
                    self.best = {"step": self.step, cfg.eval.measure: value}
                    self.save_model("best")
            self.history.append(entry)
            if cfg.log_every and (self.step % cfg.log_every == 0 or "val" in entry):
                self.accelerator.print(json.dumps(entry))
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save_checkpoint()
        if self.step >= cfg.steps:
            self.save_model("final")
            self.save_checkpoint()
        return {"step": self.step, "best": self.best, "history": self.history}
