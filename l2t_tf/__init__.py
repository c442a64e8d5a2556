"""l2t_tf: Learning to Teach with Dynamic Loss Networks (NeurIPS 2023) in TF/Keras.

    import l2t_tf
    result = l2t_tf.teach(model, (x, y), test_data=(x_test, y_test),
                          model_dir="runs/mine")

teaches one's own Keras model with L2T-DLN (`l2t_tf.api`); the learned DLN
is `result.loss`, a Keras loss (`l2t_tf.load_dln` reads an exported one).
The paper's experiments run from gin files: `python -m l2t_tf.main`.

TensorFlow is imported first, without its start-up noise on a CPU machine
(`l2t_tf.tf_startup`; TF_CPP_MIN_LOG_LEVEL=0 shows everything).
"""
from l2t_tf import tf_startup

tf_startup.import_tensorflow()

# pylint: disable=g-import-not-at-top,wrong-import-position
from l2t_tf.api import teach, TeachingResult  # noqa: E402
from l2t_tf.dln import DetectionDLN, PairwiseDLN  # noqa: E402
from l2t_tf.errors import UserError  # noqa: E402
from l2t_tf.export import DLNLoss, export_dln, load_dln  # noqa: E402
from l2t_tf.hypergradient import unrolled_hypergradient  # noqa: E402
from l2t_tf.tasks.supervised import SupervisedTask  # noqa: E402
from l2t_tf.teacher import LSTMTeacher  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

__version__ = "0.2.0.dev0"

__all__ = ["teach", "TeachingResult", "SupervisedTask", "UserError",
           "DLNLoss", "load_dln", "export_dln", "DetectionDLN", "PairwiseDLN",
           "LSTMTeacher", "unrolled_hypergradient", "__version__"]
