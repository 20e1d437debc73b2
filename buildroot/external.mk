include $(sort $(wildcard $(BR2_EXTERNAL_NEXISOS_PATH)/package/*/*.mk))
