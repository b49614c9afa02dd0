"""What the estimators print and warn, in scikit-learn's MLP's words: the verbose lines, the
ConvergenceWarning texts and the error for non-finite weights (the texts of the installed
scikit-learn's sklearn/neural_network/_multilayer_perceptron.py and sklearn/utils/optimize.py;
tests/test_sklearn_parity.py compares them with its MLP's)."""
import math
import re

import numpy as np

NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")
STOCHASTIC_LIMIT = ("Stochastic Optimizer: Maximum iterations ({}) reached and the optimization "
                    "hasn't converged yet.")
LBFGS_ITERATIONS = "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
SCALE_HINT = ("You might also want to scale the data as shown in:\n"
              "    https://scikit-learn.org/stable/modules/preprocessing.html")
# training.py's warning when scipy's L-BFGS-B gives up before max_iter (max_fun, a line search)
_SCIPY_GAVE_UP = re.compile(r"L-BFGS-B stopped after (\d+) iterations: (.*); the network keeps",
                            re.S)


def lbfgs_message(n_iter, status, message, max_iter):
    """scikit-learn's _check_optimize_result text for an L-BFGS run that did not converge."""
    text = f"lbfgs failed to converge after {n_iter} iteration(s) (status={status}):\n{message}\n"
    if n_iter == max_iter:
        text += ("\nIncrease the number of iterations to improve the convergence "
                 f"(max_iter={max_iter}).")
    return f"{text}\n{SCALE_HINT}"


def convergence_message(solver, text, max_iter):
    """scikit-learn's words for a ConvergenceWarning of training.fit (text), or text itself
    where scikit-learn's MLP has none ('cg', 'rprop', a cost that rose)."""
    if text.startswith(f"{solver} ran all "):          # out of epochs or iterations
        if solver in ("adam", "sgd", "online"):
            return STOCHASTIC_LIMIT.format(max_iter)
        if solver == "lbfgs":
            return lbfgs_message(max_iter, 1, LBFGS_ITERATIONS, max_iter)
    gave_up = _SCIPY_GAVE_UP.match(text)
    if solver == "lbfgs" and gave_up:                   # status 1: a limit (max_fun); else 2
        message = gave_up.group(2)
        status = 1 if "LIMIT" in message else 2
        return lbfgs_message(int(gave_up.group(1)), status, message, max_iter)
    return text


def stop_line(early, tol, n_iter_no_change, adaptive):
    """The line scikit-learn's verbose fit prints when the no-improvement rule stops it."""
    what = "Validation score" if early else "Training loss"
    return (f"{what} did not improve more than tol={tol:f} for {n_iter_no_change:d} "
            f"consecutive epochs." + (" Learning rate too small." if adaptive else "")
            + " Stopping.")


class EpochLog:
    """The estimators' callback for training.fit: scikit-learn's verbose lines after every
    epoch ("Iteration 1, loss = 0.69314718", "Validation score: 0.900000"), the epochs'
    logs, and with early stopping the best parameters so far, which a run that diverges
    keeps (scikit-learn's MLP goes on with a NaN validation score, then restores its best
    weights)."""

    def __init__(self, verbose, early, params):
        self.verbose, self.early = verbose, early
        self.history = {"loss": [], "time": []}               # training.py's history_ keys
        if early:
            self.history.update(val_loss=[], val_score=[])
        self.best_score = -math.inf
        self.best_params = params.copy() if early else None    # the start, until an epoch scores

    def __call__(self, net, epoch, logs):
        for key, value in logs.items():
            self.history[key].append(value)
        self._print(epoch, logs["loss"], logs.get("val_score"))
        if self.early and logs["val_score"] > self.best_score:
            self.best_score = logs["val_score"]
            np.copyto(self.best_params, net.params)

    def _print(self, epoch, loss, val_score):
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (epoch, loss))
            if self.early:
                print("Validation score: %f" % val_score)

    def diverged(self, net, error):
        """After the epoch that diverged (error: training.DivergenceError): the network gets
        the best parameters and the history of the epochs that ended well; returns that
        epoch's loss, whose validation score is NaN."""
        cost = math.nan if error.cost is None else float(error.cost)
        self._print(len(self.history["loss"]) + 1, cost, math.nan)
        net.params[...] = self.best_params
        net.history_ = self.history
        net.n_iter_ = len(self.history["loss"])
        return cost
