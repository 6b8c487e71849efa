"""How the self-check runs each kind of TODO beyond a plain call.

A *driver* takes the student's function and one stored case and returns the
value that is compared with the reference. Registering here keeps
:mod:`vaelab.checks` generic.
"""
from __future__ import annotations

import copy

import torch

from .checks import DRIVERS


def driver(kind: str):
    def register(fn):
        DRIVERS[kind] = fn
        return fn

    return register


def _grad_or_zeros(grad, like):
    return torch.zeros_like(like) if grad is None else grad.detach()


@driver("reparam")
def reparam(fn, case):
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


@driver("estimator")
def estimator(fn, case):
    """Call a gradient estimator fn(f, mu, logvar, n_samples) and return its
    two estimates as float64 scalars."""
    f_expr, mu, logvar, n = copy.deepcopy(case["args"])
    out = fn(torch_function(f_expr), mu, logvar, n)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return out
    return tuple(torch.as_tensor(v.detach() if isinstance(v, torch.Tensor) else v,
                                 dtype=torch.float64).reshape(()) for v in out)
