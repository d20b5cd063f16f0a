"""What the Python latency benchmarks share: the id stream each call draws its entities from
(the same for Quiver and Feast, so both read the same keys), and the percentile rule."""


class Ids:
    """A deterministic stream of ids in 1..entities."""

    def __init__(self, seed, entities):
        self.state, self.entities = seed, entities

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (self.state >> 33) % self.entities + 1


def percentile(sorted_values, p):
    """The value at fraction ``p`` of ``sorted_values`` (nearest rank)."""
    return sorted_values[round((len(sorted_values) - 1) * p)]
