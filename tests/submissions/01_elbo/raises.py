# The first TODO cell raises before it defines anything (so kl_gaussian_1d is
# never defined); the other two answers are correct and must still earn points.

raise ValueError("I ran out of time on this one")


def kl_gaussian_1d(mu_q, sigma_q, mu_p, sigma_p):
    return sp.log(sigma_p / sigma_q)


def kl_standard_normal(mu, logvar):
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)


def elbo_linear_gaussian(x, w, b, sigma2, m, v):
    ll = -sp.log(2 * sp.pi * sigma2) / 2 - ((x - w * m - b) ** 2 + w**2 * v) / (2 * sigma2)
    return ll - sp.log(2 * sp.pi) / 2 - (m**2 + v) / 2 + sp.log(2 * sp.pi * sp.E * v) / 2
