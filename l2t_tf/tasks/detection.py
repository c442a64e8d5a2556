"""Object detection: YOLOv3 on MS-COCO (paper Sec. 4.2, Table 2).

Student: the YOLOv3 neck and heads (`yolov3.yolov3_head`). As in the paper
the Darknet-53 backbone is frozen and only the head is trained, so the
backbone is not part of the student: the task's data pipeline runs it once
per example (`preprocess_train` / `preprocess_eval` map an image file to the
backbone's three feature maps after letterboxing and augmentation), and the
teaching round unrolls only the head on those features. No core change is
needed: the engine sees a student whose x is the nest (C3, C4, C5).

Loss terms: `yolo_loss.loss_terms` -> [B, 3] = (l_cls, l_conf, l_loc).
Student loss: `yolo_dln.YoloDLN`, the detection DLN (a single-layer perceptron,
learned weights of the three terms) applied to the head outputs.
Validation error (e_val) and the baseline's loss: l_cls + l_conf + l_loc
(lambda = 1, 1, 1). Evaluation: backbone + head, decoding, NMS, COCOeval
mAP@[.5:.95] (`test_map`, the primary metric) and mAP@.5, and inference
frames per second (`detection_metrics`).
"""
import gin
import numpy as np
import tensorflow as tf

from l2t_tf import checks
from l2t_tf import errors
from l2t_tf.data import coco
from l2t_tf.data import letterbox
from l2t_tf.students import yolov3
from l2t_tf.tasks import base
from l2t_tf.tasks import detection_metrics
from l2t_tf.tasks import yolo_dln
from l2t_tf.tasks import yolo_loss


@gin.configurable
class DetectionTask(base.Task):
  """COCO detection by a YOLOv3 head on frozen Darknet-53 features."""
  name = "detection_coco"
  primary_metric = "test_map"
  shuffle_buffer = 1000  # Examples are file names and boxes: cheap.

  def __init__(self, data_dir="~/data/coco", year="2017",
               val_images_for_training=0, minival_ids_file=None,
               image_size=416, max_boxes=100, scale_range=(0.75, 1.25),
               backbone=yolov3.darknet53_features, head=yolov3.yolov3_head,
               dln=yolo_dln.yolo_dln, nms_iou_threshold=0.45,
               score_threshold=0.005, max_detections=100, dtype=None):
    """Builds the task; missing COCO files raise UserError here.

    Args:
      data_dir: the extracted COCO directory (see `data.coco`).
      year, val_images_for_training, minival_ids_file: the split
        (`coco.CocoData`); the defaults are the paper's split.
      image_size: S, the square input size (416 in the paper).
      max_boxes: ground-truth boxes per image after padding.
      scale_range: random scale jitter of training images.
      backbone: factory (image_size, dtype) -> frozen feature model.
      head: factory (feature_shapes, num_classes, dtype) -> head model.
      dln: factory (image_size, num_classes, dtype) -> YoloDLN.
      nms_iou_threshold, score_threshold, max_detections: evaluation NMS.
      dtype: float dtype of the models.
    """
    self.image_size = checks.integer("DetectionTask.image_size", image_size,
                                     32)
    if self.image_size % 32:
      checks.fail("DetectionTask.image_size", "a multiple of 32", image_size)
    self.scale_range = checks.number_range("DetectionTask.scale_range",
                                           scale_range)
    self.dtype = checks.float_dtype("DetectionTask.dtype", dtype)
    self.data = coco.CocoData(
        data_dir, checks.one_of("DetectionTask.year", str(year),
                                ("2014", "2017")),
        checks.integer("DetectionTask.val_images_for_training",
                       val_images_for_training, 0),
        minival_ids_file, checks.integer("DetectionTask.max_boxes", max_boxes,
                                         1))
    self.backbone_fn, self.head_fn, self.dln_fn = backbone, head, dln
    self.num_classes = self.data.num_classes
    self.nms_options = dict(iou_threshold=nms_iou_threshold,
                            score_threshold=score_threshold,
                            max_detections=max_detections)
    self._backbone = self._evaluator = None

  # ---- models and losses ------------------------------------------------
  @property
  def backbone(self):
    """The frozen feature extractor, built once (seeded by the trainer)."""
    if self._backbone is None:
      self._backbone = checks.call("DetectionTask.backbone",
                                   self.backbone_fn,
                                   image_size=self.image_size,
                                   dtype=self.dtype)
    return self._backbone

  def build_student(self):
    shapes = [tuple(o.shape[1:]) for o in self.backbone.outputs]
    return checks.call("DetectionTask.head", self.head_fn,
                       feature_shapes=shapes, num_classes=self.num_classes,
                       dtype=self.dtype)

  def build_dln(self):
    return checks.call("DetectionTask.dln", self.dln_fn,
                       image_size=self.image_size,
                       num_classes=self.num_classes, dtype=self.dtype)

  def loss_terms(self, y, outputs):
    """[B, 3] per-image (l_cls, l_conf, l_loc), `yolo_loss.loss_terms`."""
    return yolo_loss.loss_terms(y, outputs, self.image_size, self.num_classes)

  def validation_error(self, y, outputs):
    """l_cls + l_conf + l_loc, averaged over images."""
    return tf.reduce_sum(tf.reduce_mean(self.loss_terms(y, outputs), 0))

  def fixed_loss(self, y, outputs):
    """The YOLOv3 loss with lambda = (1, 1, 1)."""
    return self.validation_error(y, outputs)

  # ---- data -------------------------------------------------------------
  def training_set(self):
    return self.data.training_set()

  def test_set(self):
    return self.data.evaluation_set()[0]

  def _features(self, image):
    """Backbone maps (C3, C4, C5) of one image [S, S, 3]."""
    image = tf.cast(image, self.backbone.inputs[0].dtype)
    return tuple(f[0] for f in self.backbone(image[None], training=False))

  def _example(self, image, boxes, classes):
    """(features, y with the dense targets) of one letterboxed image."""
    targets = yolo_loss.encode_targets(boxes[None], classes[None],
                                       self.image_size, self.num_classes)[0]
    return self._features(image), {"boxes": boxes, "classes": classes,
                                   "targets": targets}

  def preprocess_train(self, x, y, seed):
    """File -> random letterbox (scale, placement, flip) -> features."""
    return self._example(*letterbox.random_letterbox(
        letterbox.load_image(x), y["boxes"], y["classes"], self.image_size,
        seed, self.scale_range))

  def _letterbox(self, x, y):
    return letterbox.letterbox(letterbox.load_image(x), y["boxes"],
                               y["classes"], self.image_size)

  def preprocess_eval(self, x, y):
    """File -> centred letterbox -> features (teacher validation batches)."""
    return self._example(*self._letterbox(x, y))

  def test_batches(self, batch_size):
    """Letterboxed images with image ids and sizes (backbone in evaluate)."""
    def prepare(x, y):
      return self._letterbox(x, y)[0], {"image_id": y["image_id"],
                                        "size": y["size"]}
    return self.test_set().map(prepare, num_parallel_calls=tf.data.AUTOTUNE
                               ).batch(batch_size)

  def heldout_batches(self, examples, batch_size):
    del examples, batch_size
    raise errors.UserError(
        "Trainer.heldout_ratio is for classification and segmentation: the "
        "detection metric scores COCO images against their annotation file; "
        "leave it at 0.")

  def dummy_batch(self, student, batch_size=2):
    """(y, outputs) of zero features and no boxes."""
    x = [tf.zeros([batch_size] + list(i.shape[1:]), i.dtype)
         for i in student.inputs]
    m = self.data.max_boxes
    y = {"boxes": -tf.ones([batch_size, m, 4]),
         "classes": -tf.ones([batch_size, m], tf.int32)}
    return y, student(x, training=False)

  def check_labels(self, student, y):
    classes = np.asarray(y["classes"])
    outputs = student.outputs[0].shape[-1] // 3 - 5
    if classes.max(initial=-1) >= outputs:
      raise errors.UserError(
          f"labels: the data has class labels up to {classes.max()} but "
          f"'{student.name}' predicts {outputs} classes.")

  # ---- evaluation -------------------------------------------------------
  def evaluate(self, student, dataset):
    """COCO mAP@[.5:.95], mAP@.5, detections and frames per second."""
    if self._evaluator is None:
      self._evaluator = detection_metrics.Evaluator(
          self.backbone, self.image_size, self.num_classes,
          self.data.category_ids, self.data.coco("val"),
          self.data.evaluation_image_ids(), self.nms_options)
    return self._evaluator(student, dataset)
