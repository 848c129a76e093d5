"""The errors every layer of ppo raises, in a module that imports nothing, so that ``ppo.run`` can
catch them before torch is loaded."""


class ConfigError(ValueError):
    """A config value outside what the trainer accepts; the message names the key, in one line."""


class TrainingDiverged(RuntimeError):
    """A loss or a parameter became NaN or infinite during training; the message names the update.
    Not a :class:`ConfigError`: the config was valid, the optimization blew up."""
