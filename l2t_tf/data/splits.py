"""The train/validation split of the training set, redrawn every teacher epoch.

Paper Sec. 4 / Table 4: the training set is divided into the student's
training part and the teacher's validation part by the validation ratio, and
re-divided at every teacher epoch. Each example i goes to the validation part
iff u_i < ratio with u = stateless_uniform([n], seed=(seed, epoch)), so the
split is a pure function of (seed, epoch): a resumed run sees the same data.

`holdout` sets aside a fixed part of the training set before any of this
(issue 16): neither the student nor the teacher ever sees it, so a method's
hyperparameters can be chosen on it without touching the test set.
"""
import tensorflow as tf


def validation_mask(size, validation_ratio, seed, epoch):
  """[size] bool tensor, True for the teacher's validation examples."""
  u = tf.random.stateless_uniform([size], seed=[seed, epoch], dtype=tf.float64)
  return u < validation_ratio


# The held-out split's seed: one fixed set for every run seed and method.
HOLDOUT_SEED = (16, 2023)


def partition(dataset, size, mask):
  """(examples where not mask, where mask, their sizes) of `dataset`."""
  n_true = int(tf.reduce_sum(tf.cast(mask, tf.int64)))

  def part(flag):
    return dataset.enumerate().filter(
        lambda i, ex: tf.equal(tf.gather(mask, i), flag)).map(
            lambda i, ex: ex)

  return part(False), part(True), size - n_true, n_true


def split(dataset, size, validation_ratio, seed, epoch):
  """(train_part, validation_part, train_size, validation_size)."""
  return partition(dataset, size,
                    validation_mask(size, validation_ratio, seed, epoch))


def holdout(dataset, size, ratio):
  """(rest, held_out, rest_size, held_out_size): a fixed selection split.

  Example i is held out iff u_i < ratio, u = stateless_uniform([size],
  HOLDOUT_SEED): the same examples for every `Trainer.seed` and method, so
  that settings compared on it are compared on the same data.
  """
  u = tf.random.stateless_uniform([size], seed=HOLDOUT_SEED, dtype=tf.float64)
  return partition(dataset, size, u < ratio)


def round_batches(train_part, validation_part, unroll_length, batch_size,
                  validation_batch_size, seed, epoch, shuffle_buffer,
                  preprocess=None, preprocess_eval=None,
                  rounds_per_validation_batch=1, stages=2):
  """Dataset of rounds: ((xs, ys) [stages, N, B, ...], (xv, yv) [Bv, ...]).

  One element per round: 2N training batches (stage I and stage III; N with
  `stages=1`, the release's stage III that reuses stage I's batches) and one
  validation batch (e_1 and e_2, as in the authors' release). The training
  part is reshuffled and repeated as often as needed; so is the validation
  part (its first pass is unchanged by the repetition), so the caller decides
  how many rounds an epoch has with `take`. Each validation batch serves
  `rounds_per_validation_batch` consecutive rounds (a short unroll, e.g. the
  N = 1 of L2T-DLF, then consumes the training data of a longer one with the
  same validation batches). Deterministic in (seed, epoch);
  augmentation gets a stateless per-example seed.
  """
  shuffle_seed = seed * 1000 + epoch
  train = train_part.shuffle(shuffle_buffer, seed=shuffle_seed).repeat()
  if preprocess is not None:
    train = train.enumerate().map(
        lambda i, ex: preprocess(ex[0], ex[1], tf.stack(
            [tf.cast(shuffle_seed, tf.int64), i])),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  train = (train.batch(batch_size, drop_remainder=True)
           .batch(unroll_length, drop_remainder=True)
           .batch(stages, drop_remainder=True))
  val = validation_part.shuffle(shuffle_buffer, seed=shuffle_seed + 1)
  if preprocess_eval is not None:
    val = val.map(preprocess_eval, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
  val = val.batch(validation_batch_size, drop_remainder=True)
  if rounds_per_validation_batch > 1:
    repeat = tf.autograph.experimental.do_not_convert(
        lambda x, y: tf.data.Dataset.from_tensors((x, y)).repeat(
            rounds_per_validation_batch))
    val = val.flat_map(repeat)
  val = val.repeat()
  return tf.data.Dataset.zip((train, val)).prefetch(tf.data.AUTOTUNE)
