"""Teaching rounds, one class per kind of method (see `rounds.base`)."""
from l2t_tf.rounds.base import RoundResult
from l2t_tf.rounds.base import StudentRunner
from l2t_tf.rounds.controller import ControllerRound
from l2t_tf.rounds.fixed_loss import FixedLossRound
from l2t_tf.rounds.hypergradient_round import HypergradientRound
from l2t_tf.rounds.l2t import L2TRound
