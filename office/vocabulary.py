"""The office's words, where code needs them: the kinds of tracked items its processes record
(`record_item` in processes/*.bpmn) and the roles its pages treat as leaders. The engine knows
none of them; the processes and county.yaml are where they are defined."""

ITEM_KIND = "督办事项"  # a decision or task under supervision (第八条)
RECTIFICATION_KIND = "整改任务"  # one task of a problem rectification (第十二条)
ITEM_KINDS = (ITEM_KIND, RECTIFICATION_KIND)  # what the 督办台账 lists

# Roles whose holders see the 领导驾驶舱 and lead the office (county.yaml).
LEADER_ROLES = ("主任", "第一副主任", "常务副主任", "副主任", "县指挥部领导", "工作组组长")
HQ_ROLES = ("县指挥部领导",)
