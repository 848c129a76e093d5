"""Population training (ppo.population): K runs trained together in one batched update, each member
exactly the run it would be alone — its rollouts, losses and weights — and independent of the others."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import ppo.population_trainer
import ppo.train
from ppo.checkpoint import load_checkpoint
from ppo.config import to_config
from ppo.errors import TrainingDiverged
from ppo.population import PopulationJob, population_key
from ppo.population_trainer import train_population
from ppo.run import compose
from ppo.rundir import read_metrics
from ppo.train import train
from tests.conftest import read_scalars

# Five members of one population: clip ε, λ, learning rate and seed all mixed (two share seed 1).
MEMBERS = [
    ["seed=1", "agent.policy_clip=0.1", "agent.gae_lambda=0.9", "agent.lr=1e-3"],
    ["seed=2", "agent.policy_clip=0.2", "agent.gae_lambda=0.95", "agent.lr=3e-4"],
    ["seed=3", "agent.policy_clip=0.3", "agent.gae_lambda=0.99", "agent.lr=1e-3"],
    ["seed=1", "agent.policy_clip=0.3", "agent.gae_lambda=0.8", "agent.lr=5e-4"],
    ["seed=4", "agent.policy_clip=0.15", "agent.gae_lambda=0.97", "agent.lr=2e-3"],
]
ENVS = {"discrete": ["env=cartpole"], "gaussian": ["env=pendulum"],
        # value clipping and an entropy bonus, each member with its own coefficients; clipped jointly
        "discrete, value clip": ["env=cartpole", "agent.clip_grad_jointly=true", "agent.value_clip=0.2"]}


def member_config(env: str, member: list[str], updates: int, *extra: str):
    config = to_config(compose([*ENVS[env], *member, "train.progress=false", "train.eval_episodes=0", *extra]))
    config.train.total_timesteps = updates * config.rollout_size
    if "agent.value_clip=0.2" in ENVS[env]:
        seed = config.seed
        config.agent.value_clip, config.agent.entropy_coef = 0.1 * seed, 0.01 * seed
        config.agent.critic_coef, config.agent.max_grad_norm = 0.25 * seed, 0.2 * seed
    return config


def record_first_rollouts(monkeypatch, module) -> list:
    """Copies of the rollouts that ``module``'s trainer collects, in order."""
    recorded = []
    collect = module.collect_rollout

    def recording(envs, actor, rollout, *args, **kwargs):
        episodes = collect(envs, actor, rollout, *args, **kwargs)
        recorded.append(dataclasses.replace(rollout, **{f.name: getattr(rollout, f.name).clone()
                                                        for f in dataclasses.fields(rollout)}))
        return episodes

    monkeypatch.setattr(module, "collect_rollout", recording)
    return recorded


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("updates, atol", [(1, 1e-5), (3, 1e-4)])
def test_each_member_trains_as_its_single_run(tmp_path, monkeypatch, env, updates, atol):
    """Every member's first rollout is its single run's (the same discrete actions, Gaussian ones to
    float32 rounding; log-probabilities within 1e-6),
    and its weights and logged losses match within 1e-5 after one update, 1e-4 after three (losses
    relative to their size)."""
    configs = [member_config(env, member, updates) for member in MEMBERS]
    assert len({population_key(config) for config in configs}) == 1
    population_rollouts = record_first_rollouts(monkeypatch, ppo.population_trainer)
    results = train_population([PopulationJob(config, tmp_path / "population" / str(k))
                                for k, config in enumerate(configs)])
    assert all(isinstance(result, dict) for result in results), results
    single_rollouts = record_first_rollouts(monkeypatch, ppo.train)
    for k, config in enumerate(configs):
        train(config, tmp_path / "alone" / str(k))
        alone, together = single_rollouts[k * updates], population_rollouts[0]
        columns = slice(k * config.env.num_envs, (k + 1) * config.env.num_envs)
        if env != "gaussian":  # the same actions drawn
            assert torch.equal(together.actions[:, columns], alone.actions)
            assert torch.equal(together.obs[:, columns], alone.obs)
        else:  # the same noise drawn around means that agree to float32 rounding
            torch.testing.assert_close(together.actions[:, columns], alone.actions, rtol=0, atol=1e-6)
            torch.testing.assert_close(together.obs[:, columns], alone.obs, rtol=0, atol=1e-5)
        torch.testing.assert_close(together.log_probs[:, columns], alone.log_probs, rtol=0, atol=1e-6)

        saved_alone = load_checkpoint(tmp_path / "alone" / str(k))
        saved_together = load_checkpoint(tmp_path / "population" / str(k))
        assert saved_together.keys() == saved_alone.keys()  # what ppo.evaluate and resume read
        assert saved_together["config"] == saved_alone["config"]
        assert results[k].keys() == read_metrics(tmp_path / "alone" / str(k)).keys()
        for network in ("actor", "critic"):
            for name, weight in saved_alone[network].items():
                torch.testing.assert_close(saved_together[network][name], weight, rtol=0, atol=atol)
        for param, state in saved_alone["optimizer"]["state"].items():
            assert float(saved_together["optimizer"]["state"][param]["step"]) == float(state["step"])
        assert saved_together["global_step"] == saved_alone["global_step"]

        scalars_alone, scalars_together = (read_scalars(tmp_path / run / str(k)) for run in ("alone", "population"))
        episodes_alone, episodes_together = (scalars.get("episode/score", [])
                                             for scalars in (scalars_alone, scalars_together))
        assert [step for step, _ in episodes_together] == [step for step, _ in episodes_alone]
        assert [score for _, score in episodes_together] == pytest.approx([score for _, score in episodes_alone],
                                                                          rel=1e-5)
        for tag in ("loss/actor", "loss/critic", "loss/total", "diagnostics/approx_kl", "diagnostics/entropy",
                    "diagnostics/learning_rate", "diagnostics/policy_clip"):
            (steps_alone, values_alone), (steps_together, values_together) = (
                zip(*scalars[tag]) for scalars in (scalars_alone, scalars_together))
            assert steps_together == steps_alone
            # relative as well: the critic's loss is tens at first, where float32 resolves about 4e-6
            torch.testing.assert_close(torch.tensor(values_together), torch.tensor(values_alone), rtol=atol, atol=atol)


def first_update_scalars(tmp_path, name: str, members: list[list[str]]) -> list[dict]:
    results = train_population([PopulationJob(member_config("discrete", member, 1), tmp_path / name / str(k))
                                for k, member in enumerate(members)])
    assert all(isinstance(result, dict) for result in results), results
    return [read_scalars(tmp_path / name / str(k)) for k in range(len(members))]


def test_members_are_independent(tmp_path, monkeypatch):
    """Two members of one seed with different ε collect the same first rollout and clip differently
    in their first update; and a member's first update is the same whatever another member's numbers."""
    rollouts = record_first_rollouts(monkeypatch, ppo.population_trainer)
    same_seed = first_update_scalars(tmp_path, "same_seed", [["seed=7", "agent.policy_clip=0.05"],
                                                              ["seed=7", "agent.policy_clip=0.3"]])
    num_envs = rollouts[0].actions.shape[1] // 2
    assert torch.equal(rollouts[0].actions[:, :num_envs], rollouts[0].actions[:, num_envs:])
    clip_fractions = [scalars["diagnostics/clip_fraction"][0][1] for scalars in same_seed]
    assert clip_fractions[0] != clip_fractions[1]

    first = ["seed=1", "agent.policy_clip=0.2", "agent.lr=1e-3"]
    beside_one = first_update_scalars(tmp_path, "beside_one", [first, ["seed=2", "agent.lr=3e-4"]])[0]
    beside_another = first_update_scalars(tmp_path, "beside_another",
                                          [first, ["seed=9", "agent.lr=5e-3", "agent.gae_lambda=0.5",
                                                   "agent.policy_clip=0.4", "agent.entropy_coef=0.1"]])[0]
    for tag in ("loss/actor", "loss/critic", "diagnostics/clip_fraction", "diagnostics/approx_kl"):
        assert [value for _, value in beside_one[tag]] == pytest.approx([value for _, value in beside_another[tag]],
                                                                         rel=1e-6, abs=1e-6)
    weights = [load_checkpoint(tmp_path / name / "0")["actor"] for name in ("beside_one", "beside_another")]
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=1e-6)


def test_a_diverged_member_fails_alone(tmp_path):
    """A member whose loss goes non-finite stops with TrainingDiverged; the others finish."""
    configs = [member_config("discrete", ["seed=1"], 2), member_config("discrete", ["seed=2", "agent.lr=1e30"], 2),
               member_config("discrete", ["seed=3"], 2)]
    results = train_population([PopulationJob(config, tmp_path / str(k)) for k, config in enumerate(configs)])
    assert isinstance(results[1], TrainingDiverged)
    assert "training diverged" in str(results[1])
    assert [isinstance(results[k], dict) and results[k]["global_step"] for k in (0, 2)] == [2 * 512, 2 * 512]


def test_population_key_groups_by_everything_but_the_per_member_numbers():
    base = to_config(compose([]))
    varied = to_config(compose(["seed=5", "agent.policy_clip=0.1", "agent.gae_lambda=0.8", "agent.gamma=0.9",
                                "agent.lr=1e-4", "agent.entropy_coef=0.01", "agent.critic_coef=1.0"]))
    assert population_key(base) == population_key(varied)
    for other in (["agent.batch_size=64"], ["agent.n_steps=64"], ["env.num_envs=8"], ["env=acrobot"],
                  ["network=large"], ["train.total_timesteps=1000"], ["agent.max_grad_norm=null"]):
        assert population_key(to_config(compose(other))) != population_key(base), other
    assert population_key(to_config(compose(["network.shared_torso=true"]))) is None


def test_members_that_stop_early_leave_and_the_others_go_on_unchanged(tmp_path):
    """With ``train.max_episodes`` each member stops at the update where its own episodes reach it, as
    its single run does; the population goes on without it, and every member ends as its single run."""
    configs = [member_config("discrete", member, 8, "train.max_episodes=80") for member in MEMBERS]
    results = train_population([PopulationJob(config, tmp_path / "population" / str(k))
                                for k, config in enumerate(configs)])
    alone = [train(config, tmp_path / "alone" / str(k)) for k, config in enumerate(configs)]
    steps = [result["global_step"] for result in results]
    assert steps == [result["global_step"] for result in alone]
    assert len(set(steps)) > 1 and max(steps) < 8 * configs[0].rollout_size  # they stopped at different updates
    for k in range(len(MEMBERS)):
        saved_alone, saved_together = (load_checkpoint(tmp_path / run / str(k)) for run in ("alone", "population"))
        for name, weight in saved_alone["actor"].items():
            torch.testing.assert_close(saved_together["actor"][name], weight, rtol=0, atol=1e-4)
        assert results[k]["episodes"] == alone[k]["episodes"] == 80
