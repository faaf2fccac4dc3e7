"""Which Flower strategy combines the admitted updates, and client-level DP around it.

``aggregation.method`` picks one of Flower's message-API strategies:
``fedavg`` (FedAvg weighted by examples), ``median`` (FedMedian),
``trimmed-mean`` (FedTrimmedAvg), ``krum`` and ``multikrum``.  With
``central-dp.mode`` ``fixed`` or ``adaptive`` the strategy is wrapped in
Flower's server-side DP wrapper (clip each branch's update, add Gaussian
noise to the uniform average), and :class:`ClientLevelAccountant` accounts
the release with Flower's RDP accountant (dp-accounting backend) at the
client level: what it protects is a whole branch's contribution.
"""

from __future__ import annotations

from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)
from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from common.config.run import RunConfig
from common.errors import ConfigError, one_line


def sampled_per_round(cfg: RunConfig) -> int:
    """Branches sampled each round (as Flower's FedAvg samples them)."""
    fed = cfg.federation
    return max(int(fed.num_branches * fed.fraction_train), fed.min_train_branches)


def build_aggregator(cfg: RunConfig) -> Strategy:
    """The Flower strategy that aggregates admitted updates (central DP wrapper included)."""
    fed, agg = cfg.federation, cfg.aggregation
    common = dict(
        fraction_train=fed.fraction_train,
        fraction_evaluate=0.0,  # the server evaluates on its held-out set
        min_train_nodes=fed.min_train_branches,
        min_evaluate_nodes=0,
        min_available_nodes=fed.min_train_branches,
        # Client-level DP needs a uniform average (each branch's weight 1).
        weighted_by_key="unit-weight" if cfg.central_dp.mode != "off" else "num-examples",
    )
    if agg.method == "fedavg":
        inner: Strategy = FedAvg(**common)
    elif agg.method == "median":
        inner = FedMedian(**common)
    elif agg.method == "trimmed-mean":
        inner = FedTrimmedAvg(beta=agg.trim_fraction, **common)
    elif agg.method == "krum":
        inner = Krum(num_malicious_nodes=agg.byzantine, **common)
    else:
        keep = agg.multikrum_keep or max(1, sampled_per_round(cfg) - agg.byzantine)
        inner = MultiKrum(num_malicious_nodes=agg.byzantine, num_nodes_to_select=keep, **common)
    central = cfg.central_dp
    try:
        if central.mode == "fixed":
            return DifferentialPrivacyServerSideFixedClipping(
                inner, central.noise_multiplier, central.clipping_norm, sampled_per_round(cfg))
        if central.mode == "adaptive":
            return DifferentialPrivacyServerSideAdaptiveClipping(
                inner, central.noise_multiplier, sampled_per_round(cfg), initial_clipping_norm=central.clipping_norm,
                clipped_count_stddev=central.clipped_count_stddev or None)
    except ValueError as err:  # Flower's own parameter checks
        raise ConfigError(f"central-dp settings rejected by Flower ({one_line(str(err))}): "
                          "raise central-dp.clipped-count-stddev or lower central-dp.noise-multiplier") from err
    return inner


class ClientLevelAccountant:
    """Client-level epsilon of the central-DP releases (Flower's RDP accountant).

    One Gaussian release per aggregated round with the configured noise
    multiplier (for adaptive clipping this is the total multiplier of update
    noise and clipped-count noise, as Flower splits it).  Branch sampling is
    not credited (no amplification), the conservative choice when branches
    are not sampled at random.
    """

    def __init__(self, cfg: RunConfig) -> None:
        self.noise_multiplier = cfg.central_dp.noise_multiplier
        self.clipping_norm = cfg.central_dp.clipping_norm
        self.delta = cfg.central_dp.delta
        self.population = max(cfg.federation.num_branches, sampled_per_round(cfg))
        self.accountant = RdpAccountant(PrivacyConfig(
            target_delta=self.delta,
            population_size=self.population,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        ))

    def release(self, sample_size: int) -> float:
        """Account one aggregated round; return the cumulative client-level epsilon."""
        self.accountant.compose(GaussianPrivacyEvent(
            noise_multiplier=self.noise_multiplier,
            sample_size=max(1, min(sample_size, self.population)),
            population_size=self.population,
        ))
        return float(self.accountant.get_epsilon(self.delta))

    def state_dict(self) -> dict:
        """Checkpointable state."""
        return self.accountant.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore from a checkpoint."""
        self.accountant.load_state_dict(state)
