"""Annual plans (年度抽查工作计划): sampling rules and quotas, task names, the AnnualPlan aggregate."""
