"""A harvested evaluation set: our own re-implementations of mistakes seen in
other courses' public VAE code (no code copied; the comment on each names
where the mistake class was seen), and correct answers in the styles seen
there. Kept out of the grading data: tests/test_harvest.py measures how the
self-checks and hidden tests answer them."""
