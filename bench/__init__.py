"""``make bench``: the course's speed figures, each measured against the
alternative a user would otherwise pick, in the same run. See
docs/benchmarks.md for the latest results and the command that produced them."""
