"""The self-check harness: comparisons, readable lines, targeted hints."""
import sympy as sp
import torch

from vaelab.checks import check, compare, needs, run
from vaelab.symbolic import equivalent


def test_tensor_compare_reports_shape_dtype_value_and_nonfinite():
    expected = torch.tensor([1.0, 2.0, 3.0])
    assert compare(expected, expected.clone())[0]
    ok, detail, hint = compare(expected, torch.ones(3, 4))
    assert not ok and "expected shape (3,), got (3, 4)" in detail and "reduction" in hint
    # the hint names the reduction that would fix it, found by trying both
    assert "a sum over the last dimension" in compare(expected, expected.unsqueeze(-1).repeat(1, 4) / 4)[2]
    assert "a mean over the last dimension" in compare(expected, expected.unsqueeze(-1).repeat(1, 4))[2]
    batch = torch.tensor([1.0, 2.0, 6.0])
    assert "a mean over the batch" in compare(batch.mean(), batch)[2]
    assert "a sum over the batch" in compare(batch.sum(), batch)[2]
    ok, detail, _ = compare(expected, expected.double())
    assert not ok and "dtype" in detail
    ok, detail, _ = compare(expected, torch.tensor([1.0, float("nan"), 3.0]))
    assert not ok and "non-finite" in detail and "(1,)" in detail
    ok, detail, hint = compare(expected, 2 * expected)
    assert not ok and "index" in detail and "twice" in hint
    ok, _, hint = compare(expected, -expected)
    assert not ok and "negative" in hint
    ok, detail, _ = compare(expected, expected.numpy())
    assert not ok and "numpy" in detail


def test_symbolic_equivalence_not_string_equality():
    x = sp.Symbol("x", positive=True)
    assert equivalent(sp.log(x**2), 2 * sp.log(x))[0]
    assert equivalent(sp.sin(x) ** 2 + sp.cos(x) ** 2, sp.Integer(1))[0]
    same, how = equivalent(sp.log(x) + 1, sp.log(x))
    assert not same and "differs" in how
    y = sp.Symbol("y", real=True)
    assert not equivalent(sp.sqrt(y**2), y)[0]  # |y| != y for negative y


def test_numeric_probes_decide_when_simplify_is_inconclusive(monkeypatch):
    import vaelab.symbolic as symbolic

    x = sp.Symbol("x", positive=True)
    monkeypatch.setattr(symbolic.sp, "simplify", lambda e: e)  # force the fallback
    same, how = symbolic.equivalent(sp.log(x**2), 2 * sp.log(x))
    assert same and "random points" in how


def test_check_on_solution_mutant_blank_and_crash(solution01, capsys):
    assert check("kl_standard_normal", solution01["kl_standard_normal"]).passed
    lines = capsys.readouterr().out.strip().splitlines()
    n_public = len(run("kl_standard_normal", solution01["kl_standard_normal"]).results)
    assert n_public >= 3  # batch 4, KL 0 at the origin, and the float64 latent-1 case the hidden test also uses
    assert lines[-2].startswith(f"kl_standard_normal: {n_public}/{n_public} public cases pass")
    assert all(line.startswith("✓") for line in lines[:-2])
    # the last line names what the hidden test also tries, read from the hidden file's own labels
    from grader import HIDDEN_REFERENCES
    from vaelab import references

    hidden = references.load(HIDDEN_REFERENCES / "01_elbo.pt")["functions"]["kl_standard_normal"]["cases"]
    assert lines[-1].startswith("  The hidden test grades the same way on other inputs:")
    assert all(c["label"] in lines[-1] for c in hidden) and len(hidden) >= 2

    def twice(mu, logvar):
        return -torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)

    report = check("kl_standard_normal", twice)
    out = capsys.readouterr().out
    assert not report.passed and "factor ½" in out and "expected" in out and "got" in out

    def blank(mu, logvar):
        raise NotImplementedError()

    out_report = run("kl_standard_normal", blank)
    assert "not implemented yet" in out_report.results[0].detail

    def crash(mu, logvar):
        return mu @ logvar  # shapes do not match: a RuntimeError from torch

    report = check("kl_standard_normal", crash)
    out = capsys.readouterr().out
    assert not report.passed and "raised RuntimeError" in out and "Traceback" not in out


def test_check_does_not_let_inputs_be_mutated_between_cases(solution01):
    def inplace(mu, logvar):
        result = solution01["kl_standard_normal"](mu, logvar)
        mu.add_(100.0)
        return result

    assert run("kl_standard_normal", inplace).passed
    assert run("kl_standard_normal", solution01["kl_standard_normal"]).passed


def test_monkeypatched_torch_comparisons_do_not_change_verdicts(solution01, monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda a, b, **k: torch.ones_like(a, dtype=torch.bool))
    monkeypatch.setattr(torch, "abs", lambda t: torch.zeros_like(t))

    def wrong(mu, logvar):
        return torch.zeros(mu.shape[0])

    assert not run("kl_standard_normal", wrong).passed


def test_needs_turns_blank_todos_into_one_line(capsys):
    with needs("kl_standard_normal"):
        raise NotImplementedError()
    assert "complete the TODO" in capsys.readouterr().out
    try:
        with needs("kl_standard_normal"):
            raise ValueError("real bug")
    except ValueError:
        pass
    else:
        raise AssertionError("needs() must not swallow real errors")


def test_needs_explains_a_result_missing_because_an_earlier_cell_waited(capsys):
    """In a blank notebook the training cell waits for VAE, so `model` never
    exists; the next demo cell must say so in one line, not raise NameError."""
    with needs("VAE"):
        undefined_model_from_an_earlier_cell(0)  # noqa: F821
    out = capsys.readouterr().out
    assert "undefined_model_from_an_earlier_cell" in out and "earlier cell" in out
    try:
        with needs("VAE"):
            def f():
                x = x + 1  # noqa: F823  an UnboundLocalError is a real bug
                return x
            f()
    except UnboundLocalError:
        pass
    else:
        raise AssertionError("needs() must not swallow an UnboundLocalError")


# -- issue 33: factors and offsets named as what they are ----------------------
def test_an_offset_is_named_as_an_offset_never_as_a_ratio():
    import math

    from vaelab.checks import judge_case

    x = torch.randn(4, 784, dtype=torch.float64)
    expected = -0.5 * (x ** 2).sum(-1) - 784 * 0.5 * math.log(2 * math.pi)  # a Gaussian log-density per row
    case = {"args": (x,), "expected": expected, "rtol": 1e-10, "atol": 1e-10}
    off = expected + 783 * 0.5 * math.log(2 * math.pi)  # the constant counted once instead of 784 times
    result = judge_case(case, off, {})
    assert "too large by exactly 783 × ½·log 2π" in result.hint and "times" not in result.hint.split(":")[0]
    # an unnamed offset still reads as an offset, an unnamed factor as a factor
    assert "same constant" in judge_case(case, expected + 0.123, {}).hint
    assert "times 0.9" in judge_case(case, expected * 0.9, {}).hint


def test_a_single_number_gets_a_hint_only_for_a_recognisable_factor():
    from vaelab.checks import judge_case

    x = torch.randn(16, 10, dtype=torch.float64)
    mean_loss = (x ** 2).sum(-1).mean()
    case = {"args": (x,), "expected": mean_loss, "rtol": 1e-6, "atol": 1e-8}
    assert "exactly 16 times" in judge_case(case, mean_loss * 16, {}).hint  # a sum over the batch
    assert "exactly 1/10 of" in judge_case(case, mean_loss / 10, {}).hint  # a mean over the pixels
    assert judge_case(case, mean_loss * 1.37, {}).hint == ""  # nothing recognisable: no guess


def test_failure_lines_show_the_digits_that_differ():
    ok, detail, _ = compare(torch.tensor(-32.833333333, dtype=torch.float64),
                            torch.tensor(-32.8333206, dtype=torch.float64), rtol=1e-10, atol=0)
    assert not ok and "expected -32.8333333," in detail and "got -32.8333206" in detail  # two digits past the first difference


def test_a_catalogued_mistake_in_one_component_is_named_with_it():
    from vaelab.checks import judge_case

    z = torch.linspace(-1, 1, 5, dtype=torch.float64)
    expected = (z, torch.ones(5, dtype=torch.float64))
    mutant = (2 * z, torch.ones(5, dtype=torch.float64))           # the catalogued mistake shows in z only
    case = {"args": (z,), "expected": expected, "mutants": {"var_as_sigma": mutant}, "rtol": 1e-8, "atol": 1e-10}
    got = (2 * z, 3 * torch.ones(5, dtype=torch.float64))          # that mistake, and the gradient off too
    result = judge_case(case, got, {"var_as_sigma": "You used the variance where the standard deviation belongs."},
                        "call")
    assert result.hint == "In element 0: You used the variance where the standard deviation belongs."
