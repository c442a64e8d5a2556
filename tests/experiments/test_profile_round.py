"""l2t_tf/experiments/profile_round.py: where a teaching round's time goes.

The categoriser on hand-made op names, the aggregation on a hand-made trace
(every number known), and one real profile of a tiny teaching round (a
conv + BatchNorm student, N = 2): the name scopes of the library reach the
trace and every category the round has is found.
"""
import keras
import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from l2t_tf import dln_updaters
from l2t_tf import experiment
from l2t_tf.experiments import profile_round
from l2t_tf.students import batch_norm
from l2t_tf.tasks import synthetic

STEP = "student_steps/while/body/_1/student_steps/while/"
INNER = STEP + "gradient_tape/student_steps/while/"
OUTER = ("gradient_tape/student_steps/while/student_steps/while_grad/body/"
         "_9/gradient_tape/student_steps/while/gradients/")


class CategorizeTest(tf.test.TestCase):

  def check(self, name, op_type, want, teacher_function=False):
    self.assertEqual(profile_round.categorize(name, op_type,
                                              teacher_function), want, name)

  def test_phases(self):
    self.check(STEP + "conv2d_1/convolution", "Conv2D",
               ("student_forward", "rest", "student_steps"))
    self.check(INNER + "conv2d_1/convolution/Conv2DBackpropFilter",
               "Conv2DBackpropFilter",
               ("student_backward", "rest", "student_steps"))
    self.check(OUTER + "gradient_tape/student_steps/while/conv2d_1/"
               "convolution/Conv2DBackpropInput_grad/Conv2D", "Conv2D",
               ("hypergradient", "rest", "hypergradient"))
    self.check("gradient_tape/validation_error/conv2d_2/convolution/"
               "Conv2DBackpropFilter", "Conv2DBackpropFilter",
               ("hypergradient", "rest", "hypergradient"))
    self.check("hypergradient/AddN_3", "AddN",
               ("hypergradient", "rest", "hypergradient"))
    # Reverse mode: the backward loop's Hessian-vector products.
    self.check("hypergradient/while/body/_4/hypergradient/while/"
               "gradient_tape/conv2d/convolution/Conv2DBackpropInput",
               "Conv2DBackpropInput", ("hypergradient", "rest",
                                       "hypergradient"))
    self.check("validation_error/conv2d_2/convolution", "Conv2D",
               ("validation_error", "rest", "validation_error"))
    self.check("AddN_1", "AddN", ("other", "rest", "other_ops"))

  def test_scopes_made_unique(self):
    """TF suffixes a scope used twice in a graph: hypergradient_1."""
    self.check("hypergradient_1/while/body/_111/hypergradient_1/while/"
               "conv2d_1/convolution", "Conv2D",
               ("hypergradient", "rest", "hypergradient"))
    self.check("student_steps_1/while/body/_2/student_steps_1/while/"
               "gradient_tape/x/MatMul", "MatMul",
               ("student_backward", "rest", "student_steps"))
    self.check("validation_error_2/bn/exact_moments_1/Mean", "Mean",
               ("validation_error", "bn_statistics", "bn_statistics"))
    self.check("model/teacher_1/MatMul", "MatMul",
               ("teacher", "rest", "teacher"))
    self.check(STEP + "loss/dln_mlp_1/MatMul", "MatMul",
               ("student_forward", "dln", "dln"))
    # A scope's name inside another word is not that scope.
    self.check("my_student_steps_total/Sum", "Sum",
               ("other", "rest", "other_ops"))

  def test_components(self):
    self.check(STEP + "batch_normalization_1/exact_moments/Mean", "Mean",
               ("student_forward", "bn_statistics", "bn_statistics"))
    self.check(OUTER + "student_steps/while/batch_normalization_1/"
               "exact_moments/Mean_grad/Tile", "Tile",
               ("hypergradient", "bn_statistics", "bn_statistics"))
    self.check(INNER + "batch_normalization_1/batchnorm/mul_1/Mul", "Mul",
               ("student_backward", "bn_normalize", "bn_normalize"))
    self.check(STEP + "pairwise_dln_1/dln_mlp/Tensordot/MatMul", "MatMul",
               ("student_forward", "dln", "dln"))
    self.check(OUTER + "x/dln_rows/unstack_grad/stack", "Pack",
               ("hypergradient", "dln", "dln"))
    self.check(STEP + "TensorListPushBack_3", "TensorListPushBack",
               ("student_forward", "copies", "copies"))
    self.check("AssignVariableOp_7", "AssignVariableOp",
               ("other", "copies", "copies"))
    self.check(STEP + "Exit_2", "Exit",
               ("student_forward", "control_flow", "control_flow"))

  def test_teacher(self):
    self.check("lstm_teacher_1/teacher/lstm_0_1/MatMul_1", "MatMul",
               ("teacher", "rest", "teacher"))
    self.check("gradient_tape/lstm_teacher_1/teacher/lstm_0_1/MatMul/MatMul",
               "MatMul", ("teacher", "rest", "teacher"))
    self.check("adam/Sub_1", "Sub", ("other", "rest", "other_ops"))
    self.check("adam/Sub_1", "Sub", ("teacher", "rest", "teacher"),
               teacher_function=True)
    self.check("ReadVariableOp", "ReadVariableOp",
               ("teacher", "copies", "teacher"), teacher_function=True)

  def test_every_category_is_listed(self):
    for phase in profile_round.PHASES:
      for component in profile_round.COMPONENTS:
        self.assertIn(profile_round.category_of(phase, component),
                      profile_round.OP_CATEGORIES)


U = 10**10  # ps per unit of the hand-made trace (10 ms).


def _space(offset=0):
  """One round [0, 100) units: a tf.function call, ops on two threads."""
  space = xplane_pb2.XSpace()
  plane = space.planes.add(name="/host:CPU")
  plane.stat_metadata[1].name = "tf_function_call"
  plane.stat_metadata[2].name = "step_num"
  names = {}

  def event(line, name, start, end, stat=None):
    if name not in names:
      names[name] = len(names) + 1
      plane.event_metadata[names[name]].name = name
    e = line.events.add(metadata_id=names[name], offset_ps=start * U,
                        duration_ps=(end - start) * U)
    if stat:
      e.stats.add(metadata_id=stat, int64_value=1)

  python = plane.lines.add(id=1, name="python", timestamp_ns=offset)
  event(python, profile_round.ROUND_EVENT, 0, 100, stat=2)
  event(python, "<lambda>", 10, 60, stat=1)
  event(python, "EagerLocalExecute: __inference_stage_7", 12, 58)
  event(python, "EagerLocalExecute: Mul", 70, 75)
  event(python, "later:Conv2D", 110, 120)  # After the round: not counted.
  one = plane.lines.add(id=2, name="tf_Compute/1", timestamp_ns=offset)
  event(one, "ExecutorState::Process", 15, 55)
  event(one, STEP + "conv/convolution:Conv2D", 20, 30)
  event(one, "ParallelFor", 21, 29)  # Not an op.
  event(one, STEP + "x:Identity", 22, 24)  # An op run inside an op.
  event(one, OUTER + "y:Mul", 32, 40)
  two = plane.lines.add(id=3, name="tf_Compute/2", timestamp_ns=offset)
  event(two, "ExecutorState::Process", 24, 36)
  event(two, STEP + "bn/exact_moments/Mean:Mean", 25, 35)
  space.planes.add(name="Task Environment")
  return space


class AggregateTest(tf.test.TestCase):

  def test_hand_made_trace(self):
    result = profile_round.aggregate(_space())
    self.assertEqual(result["rounds"], 1)
    self.assertAllClose(result["wall_s"], 1.0)  # 100 units of 10 ms.
    # Op thread time (self): Conv2D 10 - 2, Identity 2, Mul 8, Mean 10.
    thread = result["op_thread_s"]
    self.assertAllClose([thread[c] for c in (
        "student_steps", "copies", "hypergradient", "bn_statistics")],
                        [0.08, 0.02, 0.08, 0.10])
    self.assertAllClose(result["op_thread_total_s"], 0.28)
    # Ops busy: [20, 40]; executor to [15, 55]; the call to [10, 60]; the
    # eager op 5 more; Python the other 45.
    self.assertAllClose(result["op_busy_s"], 0.2)
    self.assertAllClose(result["parallelism"], 1.4)
    seconds = {c: v["s"] for c, v in result["categories"].items()}
    self.assertAllClose(
        [seconds[c] for c in ("student_steps", "copies", "hypergradient",
                              "bn_statistics", "executor",
                              "tf_function_dispatch", "eager_ops", "python")],
        [0.2 * 8 / 28, 0.2 * 2 / 28, 0.2 * 8 / 28, 0.2 * 10 / 28, 0.2, 0.1,
         0.05, 0.45], atol=1e-5)
    self.assertAllClose(sum(seconds.values()), 1.0, atol=1e-5)
    self.assertAllClose(sum(v["fraction"] for v in
                            result["categories"].values()), 1.0, atol=1e-3)
    self.assertEqual(result["functions"]["__inference_stage_7"],
                     {"calls": 1.0, "wall_s": 0.5, "op_thread_s": 0.28})
    self.assertAllClose(result["phase_component"]["student_forward"]
                        ["bn_statistics"], 0.1)
    self.assertEqual(result["top_op_types"][0], ["Mean", 0.1])

  def test_several_profiles_are_per_round(self):
    one = profile_round.aggregate([_space()])
    two = profile_round.aggregate([_space(), _space(offset=10**12)])
    self.assertEqual(two["rounds"], 2)
    self.assertEqual(one["categories"], two["categories"])
    self.assertEqual(one["op_thread_s"], two["op_thread_s"])

  def test_no_marked_round(self):
    space = _space()
    del space.planes[0].lines[0].events[0]
    with self.assertRaisesRegex(ValueError, "profile_round"):
      profile_round.aggregate(space)


def _tiny_student(input_shape, num_classes, dtype=None):
  inputs = keras.Input(input_shape, dtype=dtype)
  x = keras.layers.Conv2D(2, 3, padding="same", use_bias=False,
                          dtype=dtype)(inputs)
  x = batch_norm.BatchNormalization(dtype=dtype)(x)
  x = keras.layers.ReLU(dtype=dtype)(x)
  x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
  return keras.Model(inputs, keras.layers.Dense(num_classes, dtype=dtype)(x))


class ProfileTest(tf.test.TestCase):
  """A real profile of the benchmark's round, on a tiny student."""

  def test_tiny_round(self):
    task = synthetic.SyntheticImageTask(
        input_shape=(4, 4, 1), num_classes=3,
        student=_tiny_student)
    built = experiment.build_experiment(
        task, tf.distribute.get_strategy(),
        updater=dln_updaters.TeacherUpdater, train_comparison=False,
        learning_rate=0.1, seed=0)
    rng = np.random.default_rng(0)
    make = lambda: (task.data.batch(rng, (2, 2, 4)),
                    task.data.batch(rng, (4,)))
    result = profile_round.profile(built.round, make, rounds=1, warmup=2,
                                   unprofiled=1)
    self.assertEqual(result["rounds"], 1)
    categories = result["categories"]
    self.assertCountEqual(categories, profile_round.CATEGORIES)
    for name, value in categories.items():
      self.assertGreaterEqual(value["s"], 0.0, name)
      self.assertGreaterEqual(value["fraction"], 0.0, name)
    self.assertAllClose(sum(v["fraction"] for v in categories.values()), 1.0,
                        atol=2e-3)
    self.assertAllClose(sum(v["s"] for v in categories.values()),
                        result["wall_s"], rtol=1e-3)
    # The round's wall time as the profile and perf_counter measure it.
    self.assertAllClose(result["wall_s"], result["round_s_profiled"],
                        rtol=0.05)
    thread = result["op_thread_s"]
    for name in ("student_steps", "hypergradient", "validation_error",
                 "bn_statistics", "bn_normalize", "dln", "teacher"):
      self.assertGreater(thread[name], 0.0, name)
    table = result["phase_component"]
    for phase in ("student_forward", "student_backward", "hypergradient"):
      for component in ("dln", "bn_statistics"):
        self.assertGreater(table[phase][component], 0.0, (phase, component))
    self.assertLen(result["teacher_functions"], 2)  # The update and learn.
    self.assertGreater(result["profiler_slowdown"], 0.0)
    share = profile_round.profile_share(result)
    self.assertTrue(0.0 < share < 1.0, share)
    check = profile_round.crosscheck(built, make, repeats=1)
    self.assertGreater(check["steps_s"], 0.0)
    self.assertGreater(check["unroll_s"], 0.0)
    self.assertLess(check["hypergradient_share"], 1.0)


if __name__ == "__main__":
  tf.test.main()
