"""How the self-check runs each kind of TODO beyond a plain call.

A *driver* takes the student's function and one stored case and returns the
value that is compared with the reference. Registering here keeps
:mod:`vaelab.checks` generic.
"""
from __future__ import annotations

import copy

import torch

from .checks import DRIVERS, OUTPUT_NAMES, Finding


def driver(kind: str, outputs=None):
    """Register a driver; ``outputs`` names the elements of a tuple it returns."""
    def register(fn):
        DRIVERS[kind] = fn
        if outputs:
            OUTPUT_NAMES[kind] = tuple(outputs)
        return fn

    return register


def _grad_or_zeros(grad, like):
    return torch.zeros_like(like) if grad is None else grad.detach()


@driver("reparam", outputs=("z", "the gradient of sum(z) with respect to mu",
                             "the gradient of sum(z) with respect to logvar"))
def _drive_reparam(fn, case):
    """Call fn(mu, logvar, eps) with mu and logvar requiring grad; return z and
    the gradients of sum(z) with respect to mu and logvar (zeros where no
    gradient arrives, e.g. after a .detach())."""
    mu, logvar, eps = (t.clone() for t in case["args"])
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    z = fn(mu, logvar, eps)
    if not isinstance(z, torch.Tensor):
        return z
    grads = (None, None)
    if z.requires_grad:
        grads = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True)
    return (z.detach(), _grad_or_zeros(grads[0], mu), _grad_or_zeros(grads[1], logvar))


def torch_function(expr):
    """A sympy expression in one symbol ``z`` as an elementwise torch function."""
    import sympy as sp

    (z,) = expr.free_symbols
    return sp.lambdify(z, expr, modules="torch")


@driver("estimator", outputs=("the estimate of d/dmu", "the estimate of d/dlogvar"))
def _drive_estimator(fn, case):
    """Call a gradient estimator fn(f, mu, logvar, n_samples) and return its
    two estimates as float64 scalars."""
    f_expr, mu, logvar, n = copy.deepcopy(case["args"])
    out = fn(torch_function(f_expr), mu, logvar, n)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return out
    return tuple(torch.as_tensor(v.detach() if isinstance(v, torch.Tensor) else v,
                                 dtype=torch.float64).reshape(()) for v in out)


def _scalar(value) -> torch.Tensor:
    return torch.as_tensor(float(value), dtype=torch.float64)


def check_layout(model, state_dict) -> int:
    """Compare a student's layers with the stored weights' names and shapes;
    raise a Finding that names the first difference. Returns the number of
    parameters."""
    if not isinstance(model, torch.nn.Module):
        raise Finding(f"the class built a {type(model).__name__}, not an nn.Module")
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wanted = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in wanted if k not in mine]
    extra = [k for k in mine if k not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" …" if len(missing) > 3 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}" + (" …" if len(extra) > 3 else ""))
        raise Finding(f"the layers do not match the table: {'; '.join(parts)}. Use the attribute names and, "
                      f"inside each nn.Sequential, the order given (Linear, ReLU, ...)")
    for k, shape in wanted.items():
        if mine[k] != shape:
            raise Finding(f"{k} has shape {mine[k]}; expected {shape}: check that layer's input and output sizes")
    return sum(p.numel() for p in model.parameters())


@driver("vae", outputs=("encode's mu", "encode's logvar", "decode(z)", "forward's (mu, logvar) vs encode's",
                         "forward's logits vs decoder(z used)", "mean of forward's noise (z - mu)/sigma",
                         "std of forward's noise (z - mu)/sigma", "whether gradients reach the encoder",
                         "the number of parameters"))
def _drive_vae(cls, case):
    """Build the student's VAE, check its layers against the stored weights
    (names, shapes, parameter count), load the weights, and summarise what
    encode, decode and forward do:

    (mu, logvar, decode(z), forward-vs-encode mismatch, forward-vs-decode
     mismatch, mean and std of the implied noise (z − mu)/σ, whether gradients
     reach the encoder, number of parameters)."""
    latent_dim, hidden_dim, state_dict, x, z, repeats = copy.deepcopy(case["args"])
    model = cls(latent_dim=latent_dim, hidden_dim=hidden_dim)
    n_parameters = check_layout(model, state_dict)
    model.load_state_dict(state_dict)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        logits = model.decode(z)
    captured = []
    # the decoder's first (fixed) layer sees the z that forward sampled, however decode is written
    handle = model.decoder[0].register_forward_hook(lambda mod, inputs, output: captured.append(inputs[0]))
    try:
        x_many = x.repeat(repeats, 1)
        x_logits, mu_f, logvar_f = model(x_many)
    finally:
        handle.remove()
    z_used = captured[-1] if captured else mu_f
    with torch.no_grad():
        enc_gap = (mu_f - mu.repeat(repeats, 1)).abs().max() + (logvar_f - logvar.repeat(repeats, 1)).abs().max()
        dec_gap = (x_logits - model.decoder(z_used)).abs().max()
        eps = (z_used - mu_f) / torch.exp(0.5 * logvar_f)
    first = next(model.parameters())
    reaches = torch.autograd.grad(x_logits.sum(), first, allow_unused=True)[0] if x_logits.requires_grad else None
    grad_flag = 0.0 if reaches is None or float(reaches.abs().sum()) == 0.0 else 1.0
    return (mu.detach(), logvar.detach(), logits.detach(), _scalar(enc_gap), _scalar(dec_gap),
            _scalar(eps.mean()), _scalar(eps.std()), _scalar(grad_flag), _scalar(n_parameters))


@driver("iwae")
def _drive_iwae(fn, case):
    """iwae_bound(model, x, k, eps=eps) on a fixed linear VAE (vaelab.fixtures)
    with the case's own standard-normal noise eps of shape (k, batch, latent),
    so the answer is deterministic and can be compared tightly."""
    from .fixtures import LinearVAE

    latent_dim, seed, x, k, eps = copy.deepcopy(case["args"])
    out = fn(LinearVAE(latent_dim, seed=seed), x, k, eps=eps)
    if isinstance(out, torch.Tensor) and tuple(out.shape) != (x.shape[0],):
        raise Finding(f"returned shape {tuple(out.shape)}; expected ({x.shape[0]},): one estimate per image "
                      f"(reduce over the k samples, dim 0 of the (k, batch) log-weights)")
    return out.detach() if isinstance(out, torch.Tensor) else out


@driver("train_step", outputs=("the mean loss of the first three steps", "the mean loss of the last three steps"))
def _drive_train_step(fn, case):
    """Run ``steps`` calls of train_step on a fixed batch and a fixed linear
    VAE; return the mean loss of the first and of the last three steps."""
    from .fixtures import LinearVAE

    latent_dim, seed, x, steps, lr = copy.deepcopy(case["args"])
    model = LinearVAE(latent_dim, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = fn(model, optimizer, x)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise Finding(f"train_step returned {got}; expected the batch loss as a scalar tensor")
        losses.append(float(loss))
    return (_scalar(sum(losses[:3]) / 3), _scalar(sum(losses[-3:]) / 3))


@driver("prior", outputs=("whether every value lies in [0, 1]", "the mean of the latent draws",
                           "the std of the latent draws"))
def _drive_prior(fn, case):
    """sample_prior on a fixed linear decoder: (values in [0, 1]?, mean and std
    of the latent draws recovered by inverting the decoder)."""
    from .fixtures import LinearVAE

    latent_dim, seed, n = copy.deepcopy(case["args"])
    model = LinearVAE(latent_dim, seed=seed)
    with torch.no_grad():
        out = fn(model.decode, n, latent_dim, generator=torch.Generator().manual_seed(seed + 1))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, 784):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise Finding(f"returned {got}; expected shape ({n}, 784): one row per sample")
    out = out.detach().double()
    in_range = bool(out.min() >= 0) and bool(out.max() <= 1)
    logits = torch.logit(out.clamp(1e-7, 1 - 1e-7)) if in_range else out
    with torch.no_grad():
        readout, offset = model.readout.double(), model.offset.double()
        z = (logits - offset) @ torch.linalg.pinv(readout)  # (n, latent_dim)
    return (_scalar(in_range), z.mean(0), z.std(0))


@driver("cvae", outputs=("decode(z, y)", "forward's mu", "forward's logvar", "whether decode depends on y",
                          "whether forward's output has the data's shape"))
def _drive_cvae(cls, case):
    """Build the student's CVAE with stored weights: (decode(z, y), encoder's
    mu and logvar from forward, does decode depend on y?, does forward's output
    have the data's shape?)."""
    latent_dim, hidden_dim, state_dict, x, y, z = copy.deepcopy(case["args"])
    model = cls(latent_dim, num_classes=y.shape[1], hidden_dim=hidden_dim)
    model.load_state_dict(state_dict)
    with torch.no_grad():
        logits = model.decode(z, y)
        other = model.decode(z, torch.roll(y, 1, dims=1))
        x_logits, mu, logvar = model(x, y)
    label_matters = float((logits - other).abs().max()) > 1e-4
    return (logits, mu, logvar, _scalar(label_matters), _scalar(tuple(x_logits.shape) == tuple(x.shape)))


@driver("choice")
def _drive_choice(fn, case):
    """A "predict, then run" question: fn() returns one of the letters in
    case["args"][0] (case and spaces ignored)."""
    (choices,) = copy.deepcopy(case["args"])
    answer = fn()
    if isinstance(answer, str):
        answer = answer.strip().lower()
    if answer not in choices:
        shown = repr(answer) if isinstance(answer, (str, int, float, type(None))) else f"a {type(answer).__name__}"
        raise Finding(f"returned {shown}; return one of {', '.join(repr(c) for c in choices)} (a string)")
    return answer


class _ConstantDecoder(torch.nn.Module):
    """A decoder that ignores z: the same logits for every sample, so p(x) = p(x | ·) exactly."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, z):
        return self.logits.expand(z.shape[0], -1)


@driver("naive")
def _drive_naive(fn, case):
    """naive_log_px(decoder, x, latent_dim, n_samples, generator) on a fixed linear
    decoder, or on one that ignores z, with a generator seeded by the case (the
    draws, and so the answer, are fixed)."""
    from .fixtures import LinearVAE

    latent_dim, seed, x, n_samples, gen_seed, constant = copy.deepcopy(case["args"])
    model = LinearVAE(latent_dim, data_dim=x.shape[1], seed=seed)
    decoder = _ConstantDecoder(model.offset.detach() + model.readout.detach()[0]) if constant else model.decode
    with torch.no_grad():
        out = fn(decoder, x, latent_dim, n_samples, generator=torch.Generator().manual_seed(gen_seed))
    if isinstance(out, torch.Tensor) and tuple(out.shape) != (x.shape[0],):
        raise Finding(f"returned shape {tuple(out.shape)}; expected ({x.shape[0]},): one estimate per image "
                      f"(reduce over the S samples)")
    return out.detach() if isinstance(out, torch.Tensor) else out


@driver("warmup")
def _drive_warmup(fn, case):
    """kl_warmup(step, warmup_steps) at every (step, warmup_steps) of the case, as one vector."""
    (pairs,) = copy.deepcopy(case["args"])
    values = []
    for step, warmup_steps in pairs:
        value = fn(step, warmup_steps)
        if isinstance(value, torch.Tensor):
            value = value.item()
        if not isinstance(value, (int, float)):
            raise Finding(f"kl_warmup({step}, {warmup_steps}) returned a {type(value).__name__}; expected a float")
        values.append(float(value))
    return torch.tensor(values, dtype=torch.float64)


@driver("active")
def _drive_active(fn, case):
    """active_units(mu[, threshold=...]) as a float64 scalar (a tensor answer is accepted)."""
    (mu,) = copy.deepcopy(case["args"])
    out = fn(mu, **copy.deepcopy(case.get("kwargs", {})))
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    if not isinstance(out, (int, float)) or isinstance(out, bool):
        raise Finding(f"returned a {type(out).__name__}; expected the number of active dimensions (an int)")
    return _scalar(out)
