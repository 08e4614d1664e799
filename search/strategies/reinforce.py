"""REINFORCE over a factorised categorical policy: one softmax per gene of the space.

The controller of "Neural Architecture Search with Reinforcement Learning" (Zoph & Le, ICLR 2017)
reduced to independent per-gene distributions, as in the REINFORCE baseline of NAS-Bench-201 (Dong &
Yang, ICLR 2020), trained with the likelihood-ratio gradient and an exponential moving-average
baseline (Williams, "Simple statistical gradient-following algorithms for connectionist
reinforcement learning", Machine Learning 1992). Several objectives are scalarised into one reward
as in MnasNet (Tan et al., CVPR 2019), with two changes for front coverage: objectives are scaled to
[0, 1] by their running minimum and maximum, and the scalarisation's weight vector is redrawn
uniformly from the simplex every ``episode`` rewards, so the policy is pushed along the front
rather than to one trade-off (a random-weight scheme like ParEGO's; Knowles, IEEE TEVC 2006).
"""

from __future__ import annotations

import numpy as np

from ..errors import HwnasError
from ..objectives import tchebycheff, weighted_sum
from ..spaces.space import Architecture, Space
from .base import Strategy

__all__ = ["Reinforce"]

_SCALARIZATIONS = ("tchebycheff", "weighted_sum")


class Reinforce(Strategy):
    """REINFORCE with a moving-average baseline on a factorised categorical policy.

    Args:
        space: the search space.
        n_objectives: number of minimised objectives told.
        seed: seed of the strategy's generator.
        lr: step size of gradient ascent on the logits.
        baseline_decay: decay of the moving-average reward baseline.
        scalarization: ``"tchebycheff"`` or ``"weighted_sum"`` of the normalised objectives.
        episode: rewards per weight vector; the weights are redrawn after this many.
        entropy: weight of an entropy bonus that keeps the policy from collapsing.
        violation_penalty: an infeasible reward is ``-1 - violation_penalty * v / max(v)``, below
            every feasible one (normalised feasible rewards lie in [-1, 0]).
        max_redraws: draws per asked architecture before a known one is returned anyway.
        redraw_heat: temperature added per redraw (draw ``t`` samples at ``1 + t * redraw_heat``).
        normalize: divide advantages by a moving standard deviation of the rewards, so ``lr`` does
            not depend on the objectives' spread.
        adv_floor: smallest standard deviation divided by (keeps a converged policy from
            amplifying noise).

    Attributes:
        logits_: ``(n_genes, max_choices)`` logits (``-inf`` pads genes with fewer choices).
        baseline_: moving average of the rewards (``None`` before the first).
        reward_var_: moving average of the squared advantages.
        weights_: the current scalarisation weights.
        f_min_, f_max_: running bounds of every objective.

    A draw that is already in the archive (or asked and not yet told) is drawn again from a
    slightly flatter policy, so a policy that has converged still asks for new architectures near
    its mode instead of spending asks on known ones; the update treats such draws as on-policy
    (a small bias, the price of not re-asking). Every tell, asked or not, is one sample of the
    gradient; genes inactive in the told network get none.

    Example:
        >>> s = Reinforce(get_space("nb201"), 2, seed=0)
        >>> archs = s.ask(4); s.tell(archs, F)
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None, *,
                 lr: float = 0.2, baseline_decay: float = 0.9,
                 scalarization: str = "tchebycheff", episode: int = 10, entropy: float = 0.1,
                 violation_penalty: float = 1.0, max_redraws: int = 100,
                 redraw_heat: float = 0.1, normalize: bool = True, adv_floor: float = 0.05):
        super().__init__(space, n_objectives, seed)
        if scalarization not in _SCALARIZATIONS:
            raise HwnasError(f"scalarization {scalarization!r}; valid: "
                             f"{', '.join(_SCALARIZATIONS)}")
        self.lr, self.baseline_decay, self.scalarization = lr, baseline_decay, scalarization
        self.episode, self.entropy = episode, entropy
        self.violation_penalty, self.max_redraws = violation_penalty, max_redraws
        self.normalize, self.redraw_heat, self.adv_floor = normalize, redraw_heat, adv_floor
        k = space.n_choices
        self._valid = np.arange(k.max())[None, :] < k[:, None]
        self.logits_ = np.where(self._valid, 0.0, -np.inf)
        self.baseline_: float | None = None
        self.reward_var_ = 0.0
        self.weights_ = self._draw_weights()
        self.f_min_ = np.full(n_objectives, np.inf)
        self.f_max_ = np.full(n_objectives, -np.inf)
        self._v_max = 0.0
        self._in_episode = 0
        self._pending: set[Architecture] = set()

    # ------------------------------------------------------------------ policy
    def probabilities(self, temperature: float = 1.0) -> np.ndarray:
        """``(n_genes, max_choices)`` choice probabilities (zero on padding)."""
        z = (self.logits_ - self.logits_.max(axis=1, keepdims=True)) / temperature
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def _draw(self, temperature: float = 1.0) -> Architecture:
        cum = np.cumsum(self.probabilities(temperature), axis=1)
        u = self.rng.random(len(cum))[:, None] * cum[:, -1:]
        genes = np.minimum((cum <= u).sum(axis=1), self.space.n_choices - 1)
        return self.space.from_genes(genes)

    def ask(self, n: int = 1) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            for t in range(self.max_redraws):
                a = self._draw(1.0 + t * self.redraw_heat)
                if a not in self.archive_ and a not in self._pending and a not in out:
                    break
            out.append(a)
        self._pending.update(out)
        return out

    # ------------------------------------------------------------------ learning
    def _draw_weights(self) -> np.ndarray:
        return self.rng.dirichlet(np.ones(self.n_objectives))

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        self._pending.difference_update(archs)
        self._update(archs, F, violation)

    def rewards(self, F: np.ndarray, violation: np.ndarray) -> np.ndarray:
        """Rewards of minimised rows under the current weights and bounds (higher is better)."""
        span = np.where(self.f_max_ > self.f_min_, self.f_max_ - self.f_min_, 1.0)
        Fn = (np.asarray(F, dtype=np.float64) - self.f_min_) / span
        if self.scalarization == "tchebycheff":
            s = tchebycheff(Fn, self.weights_, np.zeros(self.n_objectives))
        else:
            s = weighted_sum(Fn, self.weights_)
        v = np.asarray(violation, dtype=np.float64)
        penalty = np.where(v > 0, 1.0 + self.violation_penalty * v / max(self._v_max, 1e-12), 0.0)
        return -s - penalty

    def _update(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        feasible = F[violation <= 0]
        if len(feasible):
            self.f_min_ = np.minimum(self.f_min_, feasible.min(axis=0))
            self.f_max_ = np.maximum(self.f_max_, feasible.max(axis=0))
        elif not np.isfinite(self.f_min_).all():  # nothing feasible yet: scale by what there is
            self.f_min_, self.f_max_ = F.min(axis=0), F.max(axis=0)
        self._v_max = max(self._v_max, float(violation.max(initial=0.0)))
        p = self.probabilities()
        grad = np.zeros_like(p)
        for j, a in enumerate(archs):
            r = float(self.rewards(F[j:j + 1], violation[j:j + 1])[0])  # weights change per episode
            if self.baseline_ is None:
                self.baseline_ = r
            advantage = r - self.baseline_
            d = self.baseline_decay
            self.baseline_ = d * self.baseline_ + (1 - d) * r
            self.reward_var_ = d * self.reward_var_ + (1 - d) * advantage**2
            if self.normalize:
                advantage /= max(np.sqrt(self.reward_var_), self.adv_floor)
            active = self.space.active(a.genes)
            g = -p.copy()  # d log p(choice) / d logits = onehot(choice) - p
            g[np.arange(len(p)), a.genes] += 1.0
            grad += advantage * g * active[:, None]
            self._in_episode += 1
            if self._in_episode >= self.episode:
                self._new_episode()
        logp = np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0 on padding and underflow
        entropy_grad = -p * (logp - (p * logp).sum(axis=1, keepdims=True))
        step = grad / len(archs) + self.entropy * entropy_grad
        self.logits_ = np.where(self._valid, self.logits_ + self.lr * step, -np.inf)

    def _new_episode(self) -> None:
        """New weights; the baseline restarts from the recent rewards rescored under them."""
        self.weights_ = self._draw_weights()
        self._in_episode = 0
        recent = list(self.archive_.values())[-max(1, round(1 / (1 - self.baseline_decay))):]
        if recent:
            F = np.stack([f for f, _ in recent])
            self.baseline_ = float(self.rewards(F, np.array([v for _, v in recent])).mean())

