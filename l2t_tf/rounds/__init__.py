"""Teaching rounds: the round is the method (see `rounds.base`)."""
from l2t_tf.rounds.base import Round
from l2t_tf.rounds.base import RoundParts
from l2t_tf.rounds.base import RoundResult
from l2t_tf.rounds.controller import ControllerRound
from l2t_tf.rounds.fallback import ReverseModeFallback
from l2t_tf.rounds.fixed_loss import FixedLossRound
from l2t_tf.rounds.hypergradient_round import HypergradientRound
from l2t_tf.rounds.l2t import L2TRound
from l2t_tf.rounds.runner import StudentRunner

#: The rounds by name (`DLNUpdater.default_round`).
BY_NAME = {cls.__name__: cls for cls in (
    FixedLossRound, HypergradientRound, L2TRound, ControllerRound)}
