"""What a learned DLN asks of a fresh model's logits, against CE (issue 23).

A thin command-line entry point of l2t_tf/experiments/dln_logit_gradient.py.
"""
from l2t_tf.experiments.dln_logit_gradient import main

if __name__ == "__main__":
  main()
