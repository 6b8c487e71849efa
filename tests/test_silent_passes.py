"""No silent passes (issue 31, item 2): answers that do what the TODO forbids,
or skip what it demands, fail the public self-check with a message that names
the mistake in terms of the student's function; an answer that is correct but
does what the notebook warns against (a sigmoid, then BCE) passes with a
"Correct, but" line. The solutions and the correct variants still pass.

Each wrong answer is written here, as a student would type it, and run
through ``vaelab.checks`` exactly as the notebook's self-check cell runs it."""
import textwrap

import pytest

from grader import SOLUTIONS
from grader.author.record import mutant_functions
from grader.notebooks import exec_solution
from vaelab import drivers
from vaelab.checks import check, run

_NAMESPACES: dict = {}


def namespace(assignment):
    if assignment not in _NAMESPACES:
        _NAMESPACES[assignment] = exec_solution(SOLUTIONS / assignment / f"{assignment}.ipynb")
    return _NAMESPACES[assignment]


def student(assignment, target, source):
    """The function ``target`` as defined by ``source``, run in a copy of the
    solution notebook's namespace (its imports and other TODOs), like a cell."""
    scope = dict(namespace(assignment))
    exec(compile(textwrap.dedent(source), f"<student {target}>", "exec"), scope)  # noqa: S102 (our own source)
    return scope[target]


# (assignment, TODO, the wrong answer, words its failing line must contain)
WRONG = {
    "train_step without .detach()": ("03_vae", "train_step", """
        def train_step(model, optimizer, x):
            optimizer.zero_grad()
            loss = negative_elbo(x, *model(x))
            loss.backward()
            optimizer.step()
            return loss
        """, ["train_step returned a loss that is still attached", "loss.detach()"]),
    "pathwise_grad calls requires_grad_ on the caller's mu": ("02_reparameterization", "pathwise_grad", """
        def pathwise_grad(f, mu, logvar, n_samples):
            mu.requires_grad_(True)
            logvar.requires_grad_(True)
            z = reparameterize(mu, logvar, torch.randn(n_samples, dtype=mu.dtype))
            return torch.autograd.grad(f(z).mean(), (mu, logvar))
        """, ["pathwise_grad changed its argument mu", "requires_grad", "unchanged"]),
    "pathwise_grad changes mu in place": ("02_reparameterization", "pathwise_grad", """
        def pathwise_grad(f, mu, logvar, n_samples):
            eps = torch.randn(n_samples, dtype=mu.dtype)
            mu_ = mu.detach().clone().requires_grad_(True)
            logvar_ = logvar.detach().clone().requires_grad_(True)
            g = torch.autograd.grad(f(reparameterize(mu_, logvar_, eps)).mean(), (mu_, logvar_))
            mu += 0.0 * g[0] + 1e-3  # a stray in-place update of the caller's tensor
            return g
        """, ["pathwise_grad changed the values of its argument mu in place", "unchanged"]),
    "score_function_grad leaves a gradient in mu.grad": ("02_reparameterization", "score_function_grad", """
        def score_function_grad(f, mu, logvar, n_samples):
            mu.requires_grad_(True)
            with torch.no_grad():
                var = logvar.exp()
                z = mu + var.sqrt() * torch.randn(n_samples, dtype=mu.dtype)
                fz = f(z)
                d_logvar = (fz * (-0.5 + (z - mu) ** 2 / (2 * var))).mean()
            d_mu = (fz * (z - mu) / var).mean()
            return d_mu.detach(), d_logvar
        """, ["score_function_grad changed its argument mu", "unchanged"]),
    "sample_prior ignores its generator (global stream)": ("04_generation", "sample_prior", """
        @torch.no_grad()
        def sample_prior(decoder, n, latent_dim, generator=None):
            return torch.sigmoid(decoder(torch.randn(n, latent_dim)))
        """, ["sample_prior gave different answers for two generators seeded alike", "generator=generator"]),
    "sample_prior ignores its generator (its own fixed one)": ("04_generation", "sample_prior", """
        @torch.no_grad()
        def sample_prior(decoder, n, latent_dim, generator=None):
            own = torch.Generator().manual_seed(1)
            return torch.sigmoid(decoder(torch.randn(n, latent_dim, generator=own)))
        """, ["sample_prior gave the same answer for generators seeded differently", "generator=generator"]),
    "naive_log_px ignores its generator": ("05_likelihoods", "naive_log_px", """
        def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
            z = torch.randn(n_samples, latent_dim, dtype=x.dtype)
            logits = decoder(z)
            log_px_z = x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T
            return torch.logsumexp(log_px_z, dim=1) - math.log(n_samples)
        """, ["naive_log_px gave different answers for two generators seeded alike"]),
    "kl_warmup as min(1, step / warmup_steps)": ("05_likelihoods", "kl_warmup", """
        def kl_warmup(step, warmup_steps):
            return min(1, step / warmup_steps)
        """, ["kl_warmup(0, 0) divided by zero", "warmup_steps = 0"]),
}


@pytest.mark.parametrize("what", list(WRONG))
def test_wrong_answer_fails_the_self_check_with_a_message_that_names_it(what, capsys):
    assignment, target, source, words = WRONG[what]
    report = check(target, student(assignment, target, source), assignment=assignment)
    out = capsys.readouterr().out
    assert not report.passed, out
    failing = [r for r in report.results if not r.passed]
    for r in failing:
        assert all(w in r.detail for w in words), r.detail
        # the student's function is named, the driver's internals are not
        assert target in r.detail and "driver" not in r.detail.lower() and "Traceback" not in r.detail
    assert all(w in out for w in words)
    # the hidden test fails it too
    assert not run(target, student(assignment, target, source), hidden=True, assignment=assignment).passed


def test_the_messages_appear_without_a_warning_from_inside_vaelab(recwarn):
    """The only clue used to be PyTorch's UserWarning raised inside drivers.py."""
    assignment, target, source, _ = WRONG["train_step without .detach()"]
    check(target, student(assignment, target, source), assignment=assignment)
    assert not [w for w in recwarn if "vaelab" in str(w.filename)]


# --------------------------------------------------------------- sigmoid then BCE
SIGMOID_BCE = {
    "negative_elbo": ("03_vae", """
        def negative_elbo(x, x_logits, mu, logvar):
            rec = F.binary_cross_entropy(torch.sigmoid(x_logits), x, reduction="none").sum(dim=1)
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
            return (rec + kl).mean()
        """),
    "beta_negative_elbo": ("05_likelihoods", """
        def beta_negative_elbo(x, x_logits, mu, logvar, beta):
            p = torch.sigmoid(x_logits)
            rec = -(x * torch.log(p + 1e-7) + (1 - x) * torch.log(1 - p + 1e-7)).sum(-1)
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
            return (rec + beta * kl).mean()
        """),
    "iwae_bound": ("03_vae", """
        @torch.no_grad()
        def iwae_bound(model, x, k, eps=None, chunk_size=100):
            mu, logvar = model.encode(x)
            std = torch.exp(0.5 * logvar)
            if eps is None:
                eps = torch.randn(k, *mu.shape)
            z = mu + std * eps
            p = torch.sigmoid(model.decode(z.reshape(-1, z.shape[-1])).reshape(k, *x.shape))
            log_px_z = -F.binary_cross_entropy(p, x.expand_as(p), reduction="none").sum(-1)
            log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
            log_qz = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
            return torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)
        """),
    "naive_log_px": ("05_likelihoods", """
        def naive_log_px(decoder, x, latent_dim, n_samples, generator=None):
            z = torch.randn(n_samples, latent_dim, generator=generator, dtype=x.dtype)
            p = torch.sigmoid(decoder(z))
            log_px_z = x @ torch.log(p + 1e-7).T + (1 - x) @ torch.log(1 - p + 1e-7).T
            return torch.logsumexp(log_px_z, dim=1) - math.log(n_samples)
        """),
}


@pytest.mark.parametrize("target", list(SIGMOID_BCE))
def test_sigmoid_then_bce_passes_with_a_correct_but_line(target, capsys):
    assignment, source = SIGMOID_BCE[target]
    report = check(target, student(assignment, target, source), assignment=assignment)
    out = capsys.readouterr().out
    assert report.passed, out
    assert f"{drivers.CORRECT_BUT_PREFIX}: {target} turns the logits into probabilities" in out
    fix = "F.logsigmoid" if target == "naive_log_px" else "binary_cross_entropy_with_logits"
    assert fix in out and "sigmoid(30) rounds to exactly 1" in out
    # once per check, not once per case
    assert out.count(drivers.CORRECT_BUT_PREFIX) == 1


@pytest.mark.parametrize("target", list(SIGMOID_BCE))
def test_the_logits_form_gets_no_correct_but_line(target, capsys):
    assignment, _ = SIGMOID_BCE[target]
    report = check(target, namespace(assignment)[target], assignment=assignment)
    out = capsys.readouterr().out
    assert report.passed and drivers.CORRECT_BUT_PREFIX not in out, out


def test_a_wrong_answer_through_probabilities_gets_no_correct_but_line(capsys):
    """The line is for correct answers: sigmoid then BCE with a KL twice too large fails, and is not called correct."""
    report = check("negative_elbo", student("03_vae", "negative_elbo", """
        def negative_elbo(x, x_logits, mu, logvar):
            rec = F.binary_cross_entropy(torch.sigmoid(x_logits), x, reduction="none").sum(dim=1)
            kl = -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
            return (rec + kl).mean()
        """), assignment="03_vae")
    out = capsys.readouterr().out
    assert not report.passed and drivers.CORRECT_BUT_PREFIX not in out, out


def test_the_probe_tells_the_forms_apart():
    """The probe itself, on forms written here: every probability form is seen
    (BCE's clamp, a stabiliser, a clamp of p, no stabiliser at all), the logits
    forms and a wrong reduction of them are not."""
    import torch
    import torch.nn.functional as F

    def kl(mu, logvar):
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)

    probability_forms = [
        lambda x, t: F.binary_cross_entropy(torch.sigmoid(t), x, reduction="none").sum(-1),
        lambda x, t: -(x * torch.log(torch.sigmoid(t) + 1e-8) + (1 - x) * torch.log(1 - torch.sigmoid(t) + 1e-8)).sum(-1),
        lambda x, t: F.binary_cross_entropy(torch.sigmoid(t).clamp(1e-7, 1 - 1e-7), x, reduction="none").sum(-1),
        lambda x, t: -(x * torch.log(torch.sigmoid(t)) + (1 - x) * torch.log(1 - torch.sigmoid(t))).sum(-1),
    ]
    logits_forms = [
        lambda x, t: F.binary_cross_entropy_with_logits(t, x, reduction="none").sum(-1),
        lambda x, t: -torch.distributions.Bernoulli(logits=t).log_prob(x).sum(-1),
        lambda x, t: -(x * F.logsigmoid(t) + (1 - x) * F.logsigmoid(-t)).sum(-1),
        lambda x, t: F.binary_cross_entropy_with_logits(t, x, reduction="none").mean(-1),  # wrong scale, no note
    ]

    def loss(rec):
        return lambda x, t, mu, logvar: (rec(x, t) + kl(mu, logvar)).mean()

    assert all(drivers.bce_through_probabilities(loss(r)) for r in probability_forms)
    assert not any(drivers.bce_through_probabilities(loss(r)) for r in logits_forms)


def test_solutions_and_correct_variants_still_pass():
    targets = {("03_vae", "train_step"), ("03_vae", "negative_elbo"), ("02_reparameterization", "pathwise_grad"),
               ("02_reparameterization", "score_function_grad"), ("04_generation", "sample_prior"),
               ("05_likelihoods", "naive_log_px"), ("05_likelihoods", "kl_warmup"),
               ("05_likelihoods", "beta_negative_elbo")}
    checked = 0
    for assignment in sorted({a for a, _ in targets}):
        variants = mutant_functions(assignment, namespace(assignment), "variants")
        for a, target in sorted(targets):
            if a != assignment:
                continue
            functions = [("solution", namespace(assignment)[target])]
            functions += [(v.name, v.function) for v in variants.get(target, [])]
            assert len(functions) >= 2, f"{target}: no correct variants"
            for name, fn in functions:
                report = run(target, fn, assignment=assignment)
                assert report.passed, f"{target} ({name}):\n" + "\n".join(report.lines())
                checked += 1
    assert checked >= 2 * len(targets)
