"""Coming back to a run: reloading it from MLflow with its logged code, its predictions and the Kaggle submission,
and the inference a packed Kaggle notebook runs. Imports the packages below it, src.utils.run included."""
