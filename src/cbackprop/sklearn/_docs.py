"""The parameter, attribute and notes sections the two estimators' docstrings share."""

_SHARED_PARAMS = """\
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units in each hidden layer (``()`` for none).

    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', 'elu', 'softplus', \
'elliott'}, default='relu'
        Hidden units (``'identity'``: linear hidden layers). ``'sigmoid'`` is accepted as
        ``'logistic'``. cbackprop's additions (scikit-learn's MLP has none of them):
        ``'leaky_relu'`` (slope 0.01 for ``z < 0``, fixed), ``'elu'`` (alpha 1),
        ``'softplus'`` (``log(1 + exp(z))``) and ``'elliott'`` (FANN's ``FANN_ELLIOT`` at its
        default steepness 0.5: ``(z / 4) / (1 + |z| / 2) + 1/2``, in (0, 1)); Glorot's
        factor 6 for each, as for every unit but the logistic.

    solver : {'adam', 'sgd', 'lbfgs', 'online', 'cg', 'rprop'}, default='adam'
        scikit-learn's three, plus cbackprop's ``'online'`` (the derivation's per-sample
        gradient descent at rate ``learning_rate_init``; a rate near 0.1 suits it, not the
        default 0.001), ``'cg'`` (scipy's conjugate gradient, the course's fmincg role) and
        ``'rprop'`` (full-batch iRPROP-).

    alpha : float, default=0.0001
        L2 penalty ``alpha / (2 n) * sum of squared weights`` (biases excluded), ``n`` the
        number of training samples (their total weight): the course's ``lambda``, and
        scikit-learn's alpha with ``'lbfgs'``. **Differs:** every solver minimizes this same
        cost; scikit-learn's ``'sgd'`` and ``'adam'`` divide the penalty by the batch size
        instead of ``n``, so there the same alpha regularizes ``n / batch_size`` times more.

    batch_size : int or 'auto', default='auto'
        Mini-batch size of ``'sgd'`` and ``'adam'``; ``'auto'`` is ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule of ``'sgd'`` (and ``'online'``); other solvers ignore it, as in
        scikit-learn. **Differs:** ``'invscaling'`` divides by ``epoch ** power_t``, where
        scikit-learn divides by ``(samples seen + 1) ** power_t``. ``'adaptive'``, as in
        scikit-learn, divides a rate above 1e-6 by 5 and stops at one at or below it.

    learning_rate_init : float, default=0.001

    power_t : float, default=0.5
        The exponent of ``'invscaling'`` (per epoch, see ``learning_rate``).

    max_iter : int, default=200
        Epochs of the stochastic solvers, iterations of the full-batch ones. Reaching it
        before converging warns ``ConvergenceWarning`` (scikit-learn's and cbackprop's) in
        scikit-learn's words ("Stochastic Optimizer: Maximum iterations (200) reached ...",
        "lbfgs failed to converge after 200 iteration(s) (status=1): ..."); cbackprop's own
        for ``'cg'`` and ``'rprop'``. ``partial_fit`` never warns of it, as in scikit-learn.

    shuffle : bool, default=True

    random_state : int, RandomState instance or None, default=None
        Draws the initial weights (with ``init='glorot'`` the same draws as scikit-learn's
        MLP), the early-stopping split and the order of the samples.

    tol : float, default=1e-4
        The loss (or validation score) must improve by ``tol`` within ``n_iter_no_change``
        epochs; for ``'lbfgs'`` and ``'cg'``, scipy's gradient tolerance.

    verbose : bool, int or 'bar', default=False
        True (an int >= 1): scikit-learn's lines, ``Iteration 1, loss = 0.69314718`` after
        every epoch (iteration), ``Validation score: 0.900000`` after it with early stopping,
        and the line saying that the no-improvement rule stopped the fit. ``'bar'`` is
        cbackprop's: ``Network.fit``'s progress bar (tqdm, if installed; on Dask data, the
        workers line too) instead of the lines. **Differs:** the lines are printed for every
        solver (scikit-learn's ``'lbfgs'`` leaves them to scipy, which prints nothing from
        scipy 1.15); the ``'adaptive'`` schedule's "Setting learning rate to ..." lines are
        not printed.

    warm_start : bool, default=False
        Continue from the last fit's weights (the network must be the same).

    momentum : float, default=0.9
        Momentum of ``'sgd'``, in ``[0, 1)`` (scikit-learn also accepts 1).

    nesterovs_momentum : bool, default=True

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (scikit-learn's split, stratified for
        single-label classification), stop when its score fails to improve and keep the best
        weights. A fit that diverges ends with a NaN validation score for the epoch that
        diverged, keeps the best weights (the initial ones if no epoch scored) and warns
        ``ConvergenceWarning``, as scikit-learn's. **Differs:** honored by every solver
        (scikit-learn: ``'sgd'``, ``'adam'``); the validation score is unweighted; the split
        is stratified for any number of classes (scikit-learn's MLP stratifies two-class
        ``y`` only: with three or more its split is not ours, and a class with one member
        is train_test_split's "The least populated class in y has only 1 member" error
        here only); a fit that diverges stops at that epoch (scikit-learn runs its
        remaining epochs on NaN weights, then restores the same best weights).

    validation_fraction : float, default=0.1

    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's decay rates and stabilizer, as scikit-learn's.

    n_iter_no_change : int or np.inf, default=10

    max_fun : int, default=15000
        The most cost evaluations ``'lbfgs'`` may make, as scikit-learn's.

    init : {'glorot', 'ng', 'he'}, default='glorot'
        cbackprop's: ``'glorot'`` is scikit-learn's initialization; ``'ng'`` the course's
        (uniform in +-sqrt(6 / (fan_in + fan_out)), biases too); ``'he'`` normal weights of
        std ``sqrt(2 / fan_in)`` and zero biases (for relu).

    dtype : {'auto', 'float32', 'float64'}, default='auto'
        cbackprop's: the precision of the network. ``'auto'`` follows ``X`` in the first
        fit (float32 stays float32, anything else becomes float64), as scikit-learn's MLP
        does. ``predict`` and ``predict_proba`` return the network's dtype.

    clip_norm : float or None, default=None
        cbackprop's: ``'sgd'`` and ``'adam'`` scale each batch's gradient (``alpha``'s term
        included) by ``min(1, clip_norm / ||g||)``, ``||g||`` its global 2-norm over every
        layer, biases included. Other solvers refuse it (``ValueError``).

    weight_decay : float, default=0.0
        cbackprop's: ``'sgd'`` and ``'adam'``'s decoupled weight decay (AdamW's rule): the
        weights, never the biases, multiplied by ``1 - rate * weight_decay`` (the epoch's rate)
        before each step, apart from the gradient (``alpha`` is an L2 term in the loss,
        whose gradient Adam rescales). Other solvers refuse it (``ValueError``).

    dropout : float or list of float, default=0.0
        cbackprop's: inverted dropout of the hidden units while ``'online'``, ``'sgd'`` and
        ``'adam'`` train (a rate in ``[0, 1)`` for every hidden layer, or one a layer);
        masks from ``random_state`` (the same fit for any ``n_threads``). ``predict``,
        ``score`` and the validation score use the whole network; ``loss_curve_`` is the
        dropped network's loss. The full-batch solvers refuse it (``ValueError``).

    input_dropout : float, default=0.0
        cbackprop's: the same on the input features (dense ``X`` only).

    n_threads : int or None, default=None
        cbackprop's: threads the full-batch kernels split rows across. None: the usable
        cores (at most 8), capped by ``OMP_NUM_THREADS`` when set, which joblib sets in its
        workers so that ``GridSearchCV(n_jobs=k)`` does not oversubscribe the cores.
"""

_SHARED_ATTRIBUTES = """\
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape ``(fan_in, fan_out)``: ``thetas_[l][:, 1:].T``. Views into
        ``network_``'s parameters (editing them edits the model; assigning a list copies it in).

    intercepts_ : list of ndarray
        ``intercepts_[l] = thetas_[l][:, 0]``, views like ``coefs_``.

    thetas_ : list of ndarray
        The course's ``Theta(l)`` matrices, bias in column 0 (copies).

    network_ : cbackprop.Network
        The trained network (``cost_and_gradient``, ``forward``, ...).

    loss_ : float
        The cost of the last epoch or iteration, regularization included.

    loss_curve_ : list of float
        The cost after every epoch (iteration), across warm-started fits and partial_fit
        calls. **Differs:** kept for every solver (scikit-learn: ``'sgd'`` and ``'adam'``).

    best_loss_ : float or None
        ``min(loss_curve_)``; None with early stopping.

    validation_scores_ : list of float or None
        The held-out score after every epoch, with early stopping; else None.

    best_validation_score_ : float or None

    n_iter_ : int
        Epochs (iterations) run by the last fit.

    t_ : int
        Training samples seen by the solver (an epoch or iteration counts all of them).

    n_features_in_ : int

    feature_names_in_ : ndarray of str
        When ``X`` has string column names (a DataFrame, say).

    n_outputs_ : int
        Output units.

    n_layers_ : int
        Layers, input and output included.

    out_activation_ : {'softmax', 'logistic', 'identity', 'exp'}
        The output units, in scikit-learn's names.
"""

_SHARED_NOTES = """\
    Weights that stop being finite (inputs near the float range, a rate too large) raise
    ``cbackprop.DivergenceError``, a ValueError with scikit-learn's message ("Solver produced
    non-finite parameter weights. The input data may contain large values and need to be
    preprocessed.", cbackprop's detail after it) and a FloatingPointError, so that code
    written for either catches it; with early stopping, see ``early_stopping``.

    Sparse ``X`` (scipy.sparse, as scikit-learn's MLP takes it) trains and predicts without
    being densified: the first layer runs over the stored entries only.

    cbackprop's: ``predictor(n_threads=1)`` gives a callable for serving loops, set up once
    (a snapshot of the parameters and ``classes_``), whose ``predict`` (and the
    classifier's ``predict_proba``) answer as the estimator's do, in microseconds a row;
    dense ``X`` only, and one row may be given 1-D.

    Other differences: with ``'lbfgs'`` a cost that is not finite at the start raises too (scikit-learn warns
    "ABNORMAL" and keeps its initial weights); Ctrl-C stops fit with a warning and keeps the
    weights reached."""
